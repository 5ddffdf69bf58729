//! The check of `min_total_samples`: before a protocol starts, one masked sum of every party's
//! record count ([`crate::records::local`]); the protocol starts only once the total reaches the
//! definition's minimum, and below it every party fails with [`ProtocolError::TooFewRecords`].
//!
//! The minimum is part of the definition (every party submits it, and the definition digest
//! covers it), so every party runs the same check on the same opened total and comes to the same
//! verdict with no further message (from five parties the sum goes through an aggregator, which
//! finds it first and fails without sending the total: the others learn the refusal from its
//! abort, and never the total). A node's policy decides only whether it takes part without
//! the check, or with too low a minimum: that is the runtime's concern, not this module's.
//!
//! What it reveals: the total number of records, to every party (below the minimum from five
//! parties, to the aggregator only); each
//! party's count is hidden by the pairwise masks as any summed value is ([`AdditiveSum`]), and
//! with two parties the total and one's own count give the other's. The statistics protocols
//! reveal the total in their output anyway (SecureSum's `samples`, a table's cells); here it is
//! opened before anything else, so that a refusal opens nothing more. It costs one sum of one
//! value in Z_2^64 before the protocol's first message: one hop and n(n−1) messages below five
//! parties, two hops and 2(n−1) messages from five.
//!
//! Framing: with the check, every message of the computation starts with a tag byte, [`COUNT`]
//! or [`PROTOCOL`], because a party that has the total starts its protocol and may send to a
//! party that does not have it yet; such messages wait here until the total is known. Without
//! the check, messages are the protocol's own bytes, as they were.

use crate::masks::Instance;
use crate::protocol::{Io, Microprotocol, PartyIndex, Progress, ProtocolError};
use crate::sum::additive_sum::{AdditiveSum, SumMessage};
use crate::sum::rounds::count;
use crate::z2k::Z64;
use serde::{Deserialize, Serialize};

/// The tag of a message of the count's sum.
pub const COUNT: u8 = 0;
/// The tag of a message of the protocol proper.
pub const PROTOCOL: u8 = 1;

/// The count's mask instance: a sequence no protocol numbers its sums with (theirs count up
/// from 0), so that its masks are never another sum's.
const INSTANCE: Instance = Instance {
    sequence: u32::MAX,
    round: 0,
};

/// One party's check: the count's sum, then the verdict.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TotalCheck {
    min: u64,
    sum: AdditiveSum<1>,
    passed: bool,
    /// Protocol messages that arrived before the total was known, in arrival order.
    early: Vec<(PartyIndex, Vec<u8>)>,
}

/// A message of a checked computation, by its tag.
pub enum Framed<'a> {
    Count(SumMessage<1>),
    Protocol(&'a [u8]),
}

impl TotalCheck {
    /// The check of `min` records in all among `parties` parties, this party holding `records`.
    pub fn new(min: u64, records: u64, parties: usize) -> TotalCheck {
        TotalCheck {
            min,
            sum: AdditiveSum::new(vec![Z64::from_u64(records)], parties, INSTANCE),
            passed: false,
            early: Vec::new(),
        }
    }

    /// Whether the total has reached the minimum here: the protocol has started.
    pub fn passed(&self) -> bool {
        self.passed
    }

    /// Keeps a protocol message that came before the total.
    pub fn hold(&mut self, from: PartyIndex, message: &[u8]) {
        self.early.push((from, message.to_vec()));
    }

    /// The protocol messages that came before the total, once it has: the protocol takes them
    /// after its start.
    pub fn take_early(&mut self) -> Vec<(PartyIndex, Vec<u8>)> {
        std::mem::take(&mut self.early)
    }

    fn verdict(&mut self, progress: Progress<Vec<Z64>>) -> Result<Progress<()>, ProtocolError> {
        let Progress::Done(total) = progress else {
            return Ok(Progress::Continue);
        };
        if count(total[0])? < self.min {
            return Err(ProtocolError::TooFewRecords { min: self.min });
        }
        self.passed = true;
        Ok(Progress::Done(()))
    }
}

impl Microprotocol for TotalCheck {
    type Message = SumMessage<1>;
    type Output = ();

    fn start(&mut self, io: &mut Io<'_, SumMessage<1>>) -> Result<Progress<()>, ProtocolError> {
        let progress = self.sum.start(io)?;
        self.verdict(progress)
    }

    fn receive(
        &mut self,
        from: PartyIndex,
        message: SumMessage<1>,
        io: &mut Io<'_, SumMessage<1>>,
    ) -> Result<Progress<()>, ProtocolError> {
        let progress = self.sum.receive(from, message, io)?;
        self.verdict(progress)
    }
}

/// `message` with its tag in front.
pub fn frame(tag: u8, mut message: Vec<u8>) -> Vec<u8> {
    message.insert(0, tag);
    message
}

/// A checked computation's message from party `from`, by its tag.
pub fn unframe(from: PartyIndex, message: &[u8]) -> Result<Framed<'_>, ProtocolError> {
    let malformed = |reason: String| ProtocolError::Malformed { from, reason };
    match message.split_first() {
        Some((&COUNT, sum)) => serde_json::from_slice(sum)
            .map(Framed::Count)
            .map_err(|e| malformed(e.to_string())),
        Some((&PROTOCOL, protocol)) => Ok(Framed::Protocol(protocol)),
        _ => Err(malformed("a message without the tag of the total's check".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{AVAILABLE, EngineError, Spec, with_total};
    use crate::masks::Masks;
    use crate::simulate::{run_all, run_recorded};
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};
    use serde_json::{Value, json};

    /// Party `me`'s input of each protocol that takes the check: `me + 2` records.
    fn input(microprotocol: &str, me: usize) -> Value {
        let records = me + 2;
        let numbers: Vec<Value> = (0..records).map(|i| json!(i as f64 * 1.5 - me as f64)).collect();
        match microprotocol {
            "KthElement" => json!([{"array": numbers, "rank": 2, "lower_bound": -10, "upper_bound": 10}]),
            "StatisticsBivariate" => json!((0..records).map(|i| json!([i, i * me])).collect::<Vec<_>>()),
            "StatisticsFrequency" => {
                let items = ["a", "b"];
                json!((0..records).map(|i| json!(items[i % 2])).collect::<Vec<_>>())
            }
            "StatisticsContingency" => {
                let (rows, columns) = (["a", "b"], ["x", "y"]);
                json!(
                    (0..records)
                        .map(|i| json!([rows[i % 2], columns[me % 2]]))
                        .collect::<Vec<_>>()
                )
            }
            _ => json!(numbers),
        }
    }

    /// Records in all of [`input`] among `parties` parties.
    fn records(parties: usize) -> u64 {
        (0..parties).map(|me| me as u64 + 2).sum()
    }

    /// A party's output or error, and whether it found the error itself.
    type Outcome = (Result<Value, EngineError>, bool);

    /// Every party's outcome, each driven on its own as a node drives it (messages delivered in
    /// a random order): a party that fails sends the others an abort (`None`), as the runtime
    /// does, and one that had not ended when it arrives fails with the sender's error, not found
    /// by itself (`false`). Also the tag of every message sent.
    fn run_each(spec: &Spec, inputs: &[Value], rng: &mut ChaCha20Rng) -> (Vec<Outcome>, Vec<u8>) {
        type Outcomes = Vec<Option<Outcome>>;
        type InFlight = Vec<(usize, usize, Option<Vec<u8>>)>;
        let parties = inputs.len();
        let masks = Masks::dealt(parties, rng);
        let mut machines: Vec<_> = (0..parties).map(|me| spec.machine(me, &inputs[me]).unwrap()).collect();
        let mut outcomes: Outcomes = vec![None; parties];
        let mut in_flight: InFlight = Vec::new();
        let mut tags = Vec::new();
        let mut settle =
            |me: usize, step: Result<crate::Step, EngineError>, outcomes: &mut Outcomes, in_flight: &mut InFlight| {
                match step {
                    Ok(step) => {
                        tags.extend(step.outgoing.iter().map(|(_, bytes)| bytes[0]));
                        in_flight.extend(step.outgoing.into_iter().map(|(to, bytes)| (me, to, Some(bytes))));
                        if let Some(output) = step.output {
                            outcomes[me] = Some((Ok(output), true));
                        }
                    }
                    Err(error) => {
                        outcomes[me] = Some((Err(error), true));
                        in_flight.extend((0..outcomes.len()).filter(|to| *to != me).map(|to| (me, to, None)));
                    }
                }
            };
        for me in 0..parties {
            let step = machines[me].start(rng, &masks[me]);
            settle(me, step, &mut outcomes, &mut in_flight);
        }
        while !in_flight.is_empty() {
            let (from, to, bytes) = in_flight.swap_remove((rng.next_u64() % in_flight.len() as u64) as usize);
            if outcomes[to].is_some() {
                continue;
            }
            match bytes {
                Some(bytes) => {
                    let step = machines[to].receive(from, &bytes, rng, &masks[to]);
                    settle(to, step, &mut outcomes, &mut in_flight);
                }
                None => {
                    let error = outcomes[from].clone().expect("an abort follows a failure").0;
                    outcomes[to] = Some((error, false));
                }
            }
        }
        let outcomes = outcomes.into_iter().map(|o| o.expect("every party ends")).collect();
        (outcomes, tags)
    }

    fn spec(microprotocol: &str, min: Option<u64>, parties: usize) -> Spec {
        let parameters = min.map_or(json!({}), |min| json!({"min_total_samples": min}));
        Spec::new(microprotocol, &parameters, parties).unwrap()
    }

    #[test]
    fn at_the_minimum_every_protocol_gives_what_it_gives_without_it() {
        for microprotocol in AVAILABLE.iter().filter(|m| with_total(m)) {
            for parties in [2, 3, 5] {
                let inputs: Vec<Value> = (0..parties).map(|me| input(microprotocol, me)).collect();
                let mut rng = ChaCha20Rng::seed_from_u64(parties as u64);
                let plain = run_all(&spec(microprotocol, None, parties), &inputs, &mut rng).unwrap();
                for min in [1, records(parties)] {
                    let checked = run_all(&spec(microprotocol, Some(min), parties), &inputs, &mut rng).unwrap();
                    assert_eq!(checked, plain, "{microprotocol}, {parties} parties, min {min}");
                }
            }
        }
    }

    #[test]
    fn below_the_minimum_every_party_refuses_before_the_protocol_sends_anything() {
        for microprotocol in AVAILABLE.iter().filter(|m| with_total(m)) {
            for parties in [2, 3, 5] {
                let min = records(parties) + 1;
                let spec = spec(microprotocol, Some(min), parties);
                let inputs: Vec<Value> = (0..parties).map(|me| input(microprotocol, me)).collect();
                let mut rng = ChaCha20Rng::seed_from_u64(10 + parties as u64);
                let (outcomes, tags) = run_each(&spec, &inputs, &mut rng);
                assert!(tags.iter().all(|tag| *tag == COUNT), "{microprotocol}: {tags:?}");
                // From five parties only the aggregator opens the total; its abort tells the
                // others. Below five, a party may be told before it opens it.
                let own = outcomes.iter().filter(|(_, own)| *own).count();
                assert!(own >= 1, "{microprotocol}, {parties} parties");
                if parties >= 5 {
                    assert_eq!(own, 1, "{microprotocol}: the aggregator alone");
                }
                for (outcome, _) in outcomes {
                    let error = outcome.unwrap_err();
                    assert_eq!(error, EngineError::Protocol(ProtocolError::TooFewRecords { min }));
                    assert_eq!(
                        (error.code(), error.rule()),
                        ("policy_refused", Some("min_total_samples"))
                    );
                    // The minimum, never the total the parties hold.
                    assert!(!error.to_string().contains(&records(parties).to_string()), "{error}");
                }
            }
        }
    }

    /// With the parameter, the broker sees one more sum (one masked 64-bit count from every party
    /// to every other below five parties), and the protocol's messages one tag byte longer; without
    /// it, no count and no tag.
    #[test]
    fn the_count_runs_only_with_the_parameter() {
        let inputs: Vec<Value> = (0..3).map(|me| input("SecureSum", me)).collect();
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let plain = run_recorded(&spec("SecureSum", None, 3), &inputs, &mut rng).unwrap();
        let checked = run_recorded(&spec("SecureSum", Some(9), 3), &inputs, &mut rng).unwrap();
        assert!(plain.deliveries().all(|(_, _, bytes)| bytes[0] == b'{'));
        let (counts, protocol): (Vec<_>, Vec<_>) = checked.deliveries().partition(|(_, _, bytes)| bytes[0] == COUNT);
        assert_eq!(counts.len(), 6);
        assert!(counts.iter().all(|(_, _, bytes)| matches!(
            unframe(0, bytes),
            Ok(Framed::Count(SumMessage::Masked { values, .. })) if values.len() == 1
        )));
        let mut tagged: Vec<_> = protocol
            .iter()
            .map(|(from, to, bytes)| {
                assert_eq!(bytes[0], PROTOCOL);
                (*from, *to, bytes.len() - 1)
            })
            .collect();
        tagged.sort();
        assert_eq!(tagged, plain.lengths());
    }

    #[test]
    fn the_parameter_is_checked_and_agreed() {
        let invalid = |microprotocol: &str, parameters: Value| {
            let error = Spec::new(microprotocol, &parameters, 2).unwrap_err();
            assert_eq!(error.code(), "invalid_parameters", "{error}");
            error.to_string()
        };
        assert!(invalid("SecureSum", json!({"min_total_samples": 0})).contains("positive integer"));
        assert!(invalid("SecureSum", json!({"min_total_samples": "10"})).contains("positive integer"));
        assert!(invalid("SetIntersection", json!({"min_total_samples": 10})).contains("no total of records"));
        assert!(invalid("SecureMatrixMultiplication", json!({"min_total_samples": 10})).contains("no total"));
        let taking: Vec<&str> = AVAILABLE.iter().copied().filter(|m| with_total(m)).collect();
        assert_eq!(taking.len(), 8, "{taking:?}");
        assert!(!with_total("NoSuchProtocol"));
        let unknown = Spec::new("NoSuchProtocol", &json!({"min_total_samples": 10}), 2).unwrap_err();
        assert_eq!(unknown.code(), "unknown_microprotocol");
        let with_dp = json!({"min_total_samples": 10, "categories": ["a"], "dp": {"epsilon": 1}});
        assert!(invalid("StatisticsFrequency", with_dp).contains("dp"));
        // Part of the normalised parameters every party compares, beside the protocol's own.
        let spec = Spec::new("StatisticsUnivariate", &json!({"min_total_samples": 10}), 2).unwrap();
        assert_eq!(spec.parameters_json(), json!({"min_total_samples": 10}));
        let sum = Spec::new("SecureSum", &json!({"digits_after": 2, "min_total_samples": 3}), 2).unwrap();
        assert_eq!(
            sum.parameters_json(),
            json!({"digits_after": 2, "digits_before": 12, "min_total_samples": 3})
        );
        assert_eq!(Spec::new("SecureSum", &sum.parameters_json(), 2).unwrap(), sum);
    }

    #[test]
    fn a_machine_resumes_mid_check() {
        let spec = spec("StatisticsUnivariate", Some(4), 2);
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let masks = Masks::dealt(2, &mut rng);
        let mut a = spec.machine(0, &input("StatisticsUnivariate", 0)).unwrap();
        let mut b = spec.machine(1, &input("StatisticsUnivariate", 1)).unwrap();
        let from_a = a.start(&mut rng, &masks[0]).unwrap().outgoing;
        let from_b = b.start(&mut rng, &masks[1]).unwrap().outgoing;
        // a passes first and starts its protocol; its first message reaches b before b's total.
        let started = a.receive(1, &from_b[0].1, &mut rng, &masks[0]).unwrap().outgoing;
        assert_eq!(started[0].1[0], PROTOCOL);
        let held = b.receive(0, &started[0].1, &mut rng, &masks[1]).unwrap();
        assert!(held.outgoing.is_empty() && held.output.is_none());
        let mut b: crate::Machine = serde_json::from_slice(&serde_json::to_vec(&b).unwrap()).unwrap();
        // b's total: b starts its protocol and takes a's held message.
        let step = b.receive(0, &from_a[0].1, &mut rng, &masks[1]).unwrap();
        assert!(step.outgoing.iter().all(|(to, bytes)| *to == 0 && bytes[0] == PROTOCOL));
        assert!(!step.outgoing.is_empty());
    }
}
