//! Rounds: additive sums run one after another inside a protocol, each on a vector the protocol
//! chooses once the previous sum is known (a bisection step, a centred moment).
//!
//! A party may finish round r and send its masked vector of round r+1 before this party has
//! finished round r (it received every vector of round r sooner), so messages of the next round
//! are kept until the protocol begins it. Round r of sequence s is masked as instance (s, r).
//! This module owns that ordering only; what a round
//! sums is the protocol's.

use crate::masks::Instance;
use crate::protocol::{Io, Microprotocol, PartyIndex, Progress, ProtocolError};
use crate::sum::additive_sum::{AdditiveSum, SumMessage};
use crate::z2k::Zk;
use serde::{Deserialize, Serialize};

/// A message of one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundMessage<const L: usize = 4> {
    pub round: u32,
    pub sum: SumMessage<L>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rounds<const L: usize = 4> {
    /// Which sequence of sums of the computation this is: its rounds' mask instances.
    #[serde(default)]
    sequence: u32,
    /// The index the next round will have: the number of rounds begun.
    begun: u32,
    /// The round in progress, if one is.
    running: Option<AdditiveSum<L>>,
    /// Messages of the round after the last one begun, in arrival order.
    early: Vec<(PartyIndex, SumMessage<L>)>,
}

impl<const L: usize> Rounds<L> {
    /// The first (or only) sequence of sums of a computation.
    pub fn new() -> Rounds<L> {
        Rounds::sequence(0)
    }

    /// Sequence number `sequence`: a protocol that runs several sequences of sums at once
    /// numbers them apart, so that no two of its sums share a mask.
    pub fn sequence(sequence: u32) -> Rounds<L> {
        Rounds {
            sequence,
            begun: 0,
            running: None,
            early: Vec::new(),
        }
    }

    /// How many rounds have begun.
    pub fn begun(&self) -> u32 {
        self.begun
    }

    /// Begins the next round with this party's vector (the same length at every party). Its
    /// total has this vector's length: the sum refuses a message of any other length.
    pub fn begin(
        &mut self,
        vector: Vec<Zk<L>>,
        io: &mut Io<'_, RoundMessage<L>>,
    ) -> Result<Progress<Vec<Zk<L>>>, ProtocolError> {
        assert!(self.running.is_none(), "a round begins after the previous one ended");
        let round = self.begun;
        self.begun += 1;
        let instance = Instance {
            sequence: self.sequence,
            round,
        };
        let mut sum = AdditiveSum::new(vector, io.parties(), instance);
        let wrap = |sum: SumMessage<L>| RoundMessage { round, sum };
        let mut progress = io.child(wrap, |io| sum.start(io))?;
        for (from, message) in std::mem::take(&mut self.early) {
            if let Progress::Done(_) = progress {
                return Err(ProtocolError::Unexpected {
                    from,
                    what: "a message for a round that has ended".into(),
                });
            }
            progress = io.child(wrap, |io| sum.receive(from, message, io))?;
        }
        self.finish(sum, progress)
    }

    pub fn receive(
        &mut self,
        from: PartyIndex,
        message: RoundMessage<L>,
        io: &mut Io<'_, RoundMessage<L>>,
    ) -> Result<Progress<Vec<Zk<L>>>, ProtocolError> {
        let current = self.begun.checked_sub(1);
        match (&mut self.running, message.round) {
            (Some(sum), round) if Some(round) == current => {
                let progress = io.child(
                    |sum| RoundMessage { round, sum },
                    |io| sum.receive(from, message.sum, io),
                )?;
                let sum = self.running.take().expect("a round is running");
                self.finish(sum, progress)
            }
            (_, round) if round == self.begun => {
                self.early.push((from, message.sum));
                Ok(Progress::Continue)
            }
            (_, round) => Err(ProtocolError::Unexpected {
                from,
                what: format!("a message for round {round} (this party is at round {})", self.begun),
            }),
        }
    }

    fn finish(
        &mut self,
        sum: AdditiveSum<L>,
        progress: Progress<Vec<Zk<L>>>,
    ) -> Result<Progress<Vec<Zk<L>>>, ProtocolError> {
        if let Progress::Continue = progress {
            self.running = Some(sum);
        }
        Ok(progress)
    }
}

/// A summed count as a number. Every total in Z_2^64 is one; in a wider ring, a total beyond
/// 2^64 means that some party sent something other than a count.
pub fn count<const L: usize>(total: Zk<L>) -> Result<u64, ProtocolError> {
    total
        .to_u64()
        .ok_or_else(|| ProtocolError::Failed("a summed count is not a plausible number".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::masks::Masks;
    use crate::z2k::Z256;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    /// Three parties (all-to-all) and six (through an aggregator), two rounds, messages
    /// delivered in a random order: the second round's vector depends on the first round's
    /// total, and early messages are kept.
    #[test]
    fn rounds_run_in_sequence_whatever_the_delivery_order() {
        for (seed, parties) in (0..100).zip([3, 6].into_iter().cycle()) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let masks = Masks::dealt(parties, &mut rng);
            let mut states: Vec<Rounds> = (0..parties).map(|_| Rounds::new()).collect();
            let mut totals: Vec<Vec<u64>> = vec![Vec::new(); parties];
            let mut in_flight = Vec::new();
            let step = |me: usize,
                        progress: Progress<Vec<Z256>>,
                        states: &mut Vec<Rounds>,
                        io: Io<'_, RoundMessage>,
                        totals: &mut Vec<Vec<u64>>| {
                let mut sent: Vec<(usize, usize, RoundMessage)> =
                    io.into_outgoing().into_iter().map(|(to, m)| (me, to, m)).collect();
                // A round may end as it begins: every other party's vector came early.
                let mut progress = progress;
                while let Progress::Done(total) = progress {
                    let value = total[0].to_u64().unwrap();
                    totals[me].push(value);
                    if states[me].begun() == 2 {
                        break;
                    }
                    let mut rng = ChaCha20Rng::seed_from_u64(seed * 100 + me as u64);
                    let mut io = Io::with_masks(me, parties, &mut rng, &masks[me]);
                    progress = states[me]
                        .begin(vec![Z256::from_u64(value + me as u64)], &mut io)
                        .unwrap();
                    sent.extend(io.into_outgoing().into_iter().map(|(to, m)| (me, to, m)));
                }
                sent
            };
            for me in 0..parties {
                let mut io = Io::with_masks(me, parties, &mut rng, &masks[me]);
                let progress = states[me].begin(vec![Z256::from_u64(me as u64 + 1)], &mut io).unwrap();
                in_flight.extend(step(me, progress, &mut states, io, &mut totals));
            }
            let mut delivery = ChaCha20Rng::seed_from_u64(seed + 1000);
            while !in_flight.is_empty() {
                let pick = (delivery.next_u64() % in_flight.len() as u64) as usize;
                let (from, to, message) = in_flight.swap_remove(pick);
                let mut io = Io::with_masks(to, parties, &mut rng, &masks[to]);
                let progress = states[to].receive(from, message, &mut io).unwrap();
                in_flight.extend(step(to, progress, &mut states, io, &mut totals));
            }
            // 1+2+…+n, then the first total n times plus 0+1+…+(n−1).
            let first = (parties * (parties + 1) / 2) as u64;
            let second = parties as u64 * first + (parties * (parties - 1) / 2) as u64;
            assert!(totals.iter().all(|t| t == &[first, second]), "seed {seed}: {totals:?}");
        }
    }
}
