//! SetIntersection and SetIntersectionSize (n ≥ 2): the items every party holds, or only how
//! many there are, by DH-PSI on Ristretto255 ([`crate::psi::dh`]).
//!
//! Input, as the reference's: a list of lists of items, the party's set being the intersection
//! of its lists (a flat list of items is one set). Items are any JSON values, equal when their
//! canonical JSON is equal; strings give the reference's answers.
//!
//! Rounds: every party's list goes around the [`Ring`] (n hops, each adding a layer and
//! shuffling), then to party 0, which intersects the n fully encrypted lists.
//! - SetIntersectionSize: party 0 broadcasts the size. Output `{"size_intersection": k}`.
//! - SetIntersection: party 0 sends the fully encrypted intersection through parties 1..n−1,
//!   each stripping its layer and shuffling, and back to itself; party 0 recognises its own
//!   singly encrypted items, and broadcasts them. Output `{"intersection": [...],
//!   "size_intersection": k}` (the members as party 0 wrote them).
//!
//! What each party learns: every party's set size (list lengths) and the result. Party 0 also
//! learns, for n ≥ 3, the size of the intersection of every subset of the parties (it holds every
//! party's fully encrypted list, knowing whose it is). No party can link a point it receives to an
//! item without the other parties' keys, and no list returns to its owner in an order the owner
//! can map back to its items (the reference sent every party its own fully encrypted list in its
//! own order, which revealed the members to SetIntersectionSize's parties, REFERENCE.md §6 W5b).

use crate::protocol::{Io, Limits, Microprotocol, PartyIndex, Progress, ProtocolError};
use crate::psi::dh::{self, Key, Points, PsiMessage, Ring};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What the parties learn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reveal {
    Members,
    Size,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetIntersection {
    reveal: Reveal,
    context: [u8; 32],
    /// The checked input until `start` reads the set from it (off the runtime's loop).
    input: Option<Value>,
    /// The set (canonical JSON of each item), sorted; party 0 of SetIntersection keeps it, in the
    /// order of `own`, to name the members.
    items: Vec<String>,
    /// Party 0's own items encrypted once, in the order of `items` (SetIntersection only).
    own: Points,
    ring: Option<Ring>,
    /// The fully encrypted intersection, as party 0 sent it round the stripping chain, or as
    /// this party stripped it: each party strips once.
    stripped: Option<Points>,
    /// Party 0 refuses an intersection of more members than its node takes.
    #[serde(default)]
    limits: Limits,
}

impl SetIntersection {
    pub fn new(reveal: Reveal, context: [u8; 32], limits: Limits, input: &Value) -> Result<SetIntersection, String> {
        dh::check_set(input)?;
        Ok(SetIntersection {
            reveal,
            context,
            input: Some(input.clone()),
            items: Vec::new(),
            own: Points::default(),
            ring: None,
            stripped: None,
            limits,
        })
    }

    fn ring(&mut self) -> &mut Ring {
        self.ring.as_mut().expect("started")
    }

    fn key(&self) -> &Key {
        &self.ring.as_ref().expect("started").key
    }

    /// The largest intersection there can be: the smallest announced set. Stripping lists are
    /// padded to it, and none may exceed it.
    fn bound(&self) -> u32 {
        let sizes = self.ring.as_ref().and_then(Ring::sizes).unwrap_or_default();
        sizes.into_iter().min().unwrap_or(0)
    }

    /// Party 0, with every fully encrypted list: the size, or the first stripping hop.
    fn compare(&mut self, lists: Vec<Points>, io: &mut Io<'_, PsiMessage>) -> Result<Progress<Value>, ProtocolError> {
        let both = Points(dh::intersect(&lists));
        Ok(match self.reveal {
            Reveal::Size => {
                let result = json!({"size_intersection": both.len()});
                io.broadcast(PsiMessage::Result(result.clone()));
                Progress::Done(result)
            }
            Reveal::Members => {
                self.limits.check(both.len() as u64, "the intersection")?;
                let stripping = PsiMessage::Stripping {
                    intersection: both.clone(),
                    list: Points::default(),
                    pad_to: self.bound(),
                };
                self.stripped = Some(both);
                io.send(1, stripping);
                Progress::Continue
            }
        })
    }

    /// A stripping hop: parties 1..n−1 check the intersection against the complete list each
    /// made (so it can only hold items of every party), remove their layer and pass it on, with
    /// the intersection as party 0 sent it; party 0, once it is back unchanged, names the
    /// members.
    fn strip(
        &mut self,
        from: PartyIndex,
        intersection: Points,
        list: Points,
        pad_to: u32,
        io: &mut Io<'_, PsiMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        let (n, me) = (io.parties(), io.me());
        let first = me == 1;
        let stripped_before = self.stripped.is_some() && me != 0;
        if self.reveal != Reveal::Members || from != (me + n - 1) % n || stripped_before || first && !list.is_empty() {
            return Err(dh::violation(from, "the intersection out of turn".into()));
        }
        if pad_to != self.bound() || list.len() != intersection.len() && !first {
            return Err(dh::violation(
                from,
                "a stripping list of another size than the intersection".into(),
            ));
        }
        if me != 0 {
            // Only party 0 chooses the intersection; a chain party passes on what it got.
            if !self.ring.as_ref().expect("started").made_holds(&intersection.0) {
                return Err(dh::violation(
                    0,
                    "an intersection that is not within every party's list".into(),
                ));
            }
            let mut points = if first { intersection.0.clone() } else { list.0 };
            dh::reencrypt(self.key(), true, &mut points, from, io.stop())?;
            dh::shuffle(&mut points, from)?;
            self.stripped = Some(intersection.clone());
            io.send(
                (me + 1) % n,
                PsiMessage::Stripping {
                    intersection,
                    list: Points(points),
                    pad_to,
                },
            );
            return Ok(Progress::Continue);
        }
        if self.stripped.as_ref() != Some(&intersection) {
            return Err(dh::violation(from, "the intersection changed on its way".into()));
        }
        let index: std::collections::HashMap<&dh::Point, usize> =
            self.own.0.iter().enumerate().map(|(i, p)| (p, i)).collect();
        let members = list
            .0
            .iter()
            .map(|p| {
                index
                    .get(p)
                    .map(|&i| serde_json::from_str(&self.items[i]).expect("canonical JSON"))
            })
            .collect::<Option<Vec<Value>>>()
            .ok_or_else(|| dh::violation(from, "the intersection holds an element that is not one of ours".into()))?;
        let result = json!({"intersection": members, "size_intersection": members.len()});
        io.broadcast(PsiMessage::Result(result.clone()));
        Ok(Progress::Done(result))
    }

    fn completed(
        &mut self,
        lists: Option<Vec<Points>>,
        io: &mut Io<'_, PsiMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        match lists {
            Some(lists) => self.compare(lists, io),
            None => Ok(Progress::Continue),
        }
    }
}

impl Microprotocol for SetIntersection {
    type Message = PsiMessage;
    type Output = Value;

    fn start(&mut self, io: &mut Io<'_, PsiMessage>) -> Result<Progress<Value>, ProtocolError> {
        let mut ring = Ring::new(io.parties(), self.reveal == Reveal::Members, io.rng());
        self.items = dh::read_set(&self.input.take().expect("start is called once"));
        let own = dh::encrypt_items(&ring.key, &self.context, &self.items, io.stop())?;
        if io.me() == 0 && self.reveal == Reveal::Members {
            self.own = Points(own.clone());
        } else {
            self.items = Vec::new();
        }
        ring.start(own, io)?;
        self.ring = Some(ring);
        Ok(Progress::Continue)
    }

    fn receive(
        &mut self,
        from: PartyIndex,
        message: PsiMessage,
        io: &mut Io<'_, PsiMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        match message {
            PsiMessage::Layered {
                origin, layers, points, ..
            } => {
                let lists = self.ring().receive(from, origin, layers, points, io)?;
                self.completed(lists, io)
            }
            PsiMessage::Size(size) => {
                let lists = self.ring().size(from, size, io)?;
                self.completed(lists, io)
            }
            PsiMessage::Stripping {
                intersection,
                list,
                pad_to,
            } => self.strip(from, intersection, list, pad_to, io),
            PsiMessage::Result(result) if from == 0 && io.me() != 0 => Ok(Progress::Done(result)),
            PsiMessage::Result(_) => Err(ProtocolError::Unexpected {
                from,
                what: "a result from a party other than party 0".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::machine::Spec;
    use crate::psi::dh::{PsiMessage, testing};
    use crate::simulate::{run_all, run_recorded};
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};
    use serde_json::{Value, json};
    use std::collections::BTreeSet;

    /// The ring, also between two parties (where SetIntersection defaults to the OT PSI).
    fn spec(name: &str, parties: usize) -> Spec {
        let ring = if name == "SetIntersection" {
            json!({"psi": "dh"})
        } else {
            json!({})
        };
        Spec::new(name, &ring, parties).unwrap().bound_to([5; 32])
    }

    fn members(output: &Value) -> BTreeSet<String> {
        output["result"]["intersection"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.to_string())
            .collect()
    }

    /// Random sets over a small universe (so they overlap), with duplicates, unicode and
    /// non-string items, each party's input split into two lists whose intersection is its set.
    fn random_inputs(parties: usize, rng: &mut ChaCha20Rng) -> (Vec<Value>, BTreeSet<String>) {
        let universe: Vec<Value> = (0..40)
            .map(|i| match i % 4 {
                0 => json!(format!("ü-{i}-名")),
                1 => json!(i),
                2 => json!({"id": i, "k": [i, "x"]}),
                _ => json!(format!("{i}")),
            })
            .collect();
        let mut expected: Option<BTreeSet<String>> = None;
        let inputs = (0..parties)
            .map(|_| {
                let mut set: Vec<Value> = universe.iter().filter(|_| rng.next_u32() % 3 != 0).cloned().collect();
                let canonical: BTreeSet<String> = set.iter().map(Value::to_string).collect();
                expected = Some(match expected.take() {
                    None => canonical,
                    Some(e) => e.intersection(&canonical).cloned().collect(),
                });
                let extra: Vec<Value> = set.iter().take(3).cloned().collect();
                set.extend(extra);
                let mut second = set.clone();
                second.push(json!("only-in-one-list"));
                json!([set, second])
            })
            .collect();
        (inputs, expected.unwrap())
    }

    #[test]
    fn the_intersection_and_its_size_match_the_plaintext_for_2_to_5_parties() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        for parties in 2..=5 {
            for _ in 0..3 {
                let (inputs, expected) = random_inputs(parties, &mut rng);
                let outputs = run_all(&spec("SetIntersection", parties), &inputs, &mut rng).unwrap();
                for output in &outputs {
                    assert_eq!(output["inputs"], json!(parties));
                    assert_eq!(members(output), expected, "{parties} parties");
                    assert_eq!(output["result"]["size_intersection"], json!(expected.len()));
                }
                let sizes = run_all(&spec("SetIntersectionSize", parties), &inputs, &mut rng).unwrap();
                for output in &sizes {
                    assert_eq!(output["result"], json!({"size_intersection": expected.len()}));
                }
            }
        }
    }

    #[test]
    fn empty_and_disjoint_sets_and_the_reference_vector() {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let si = spec("SetIntersection", 2);
        let empty = run_all(&si, &[json!([[]]), json!([["a", "b"]])], &mut rng).unwrap();
        assert_eq!(empty[1]["result"], json!({"intersection": [], "size_intersection": 0}));
        let disjoint = run_all(&si, &[json!([["a"]]), json!([["b"]])], &mut rng).unwrap();
        assert_eq!(disjoint[0]["result"]["size_intersection"], json!(0));
        let vector = [
            json!([["A", "B", "C", "D", "E", "F", "G"], ["E", "C", "B", "A", "D"]]),
            json!([["C", "F", "A"], ["C", "F", "A", "D"]]),
        ];
        let outputs = run_all(&si, &vector, &mut rng).unwrap();
        assert_eq!(members(&outputs[1]), ["\"A\"", "\"C\""].map(String::from).into());
        let error = spec("SetIntersection", 2).machine(0, &json!("A")).unwrap_err();
        assert_eq!(error.code(), "invalid_input");
    }

    /// Every message's length, as the broker sees it: (from, to, length), sorted.
    fn lengths(spec: &Spec, inputs: &[Value]) -> Vec<(usize, usize, usize)> {
        run_recorded(spec, inputs, &mut ChaCha20Rng::seed_from_u64(14))
            .unwrap()
            .lengths()
    }

    /// Sets of the same sizes whose intersections differ (in members; for SetIntersectionSize in
    /// size too) give messages of the same lengths: the broker sees set sizes, not the result.
    #[test]
    fn message_lengths_show_the_set_sizes_only() {
        let set = |items: std::ops::Range<u32>| json!(items.map(|i| format!("item-{i:03}")).collect::<Vec<_>>());
        for parties in [2, 3] {
            let inputs =
                |shift: u32| -> Vec<Value> { (0..parties as u32).map(|p| set(p * shift..p * shift + 20)).collect() };
            let (few, more, other_members) = (inputs(15), inputs(5), inputs(5).into_iter().rev().collect::<Vec<_>>());
            let size = spec("SetIntersectionSize", parties);
            assert_eq!(
                lengths(&size, &few),
                lengths(&size, &more),
                "SetIntersectionSize, {parties} parties"
            );
            let members = spec("SetIntersection", parties);
            assert_eq!(
                lengths(&members, &more),
                lengths(&members, &other_members),
                "SetIntersection, {parties} parties"
            );
        }
    }

    /// The attack of REFERENCE.md §6 W5b, and more: no party receives a point it could compute
    /// from any input item with its own key (so nothing it receives links to an item without the
    /// other parties' keys), every list arrives shuffled, and a party's own list comes back to it
    /// only fully encrypted. Only SetIntersection's last hop brings party 0 its own singly
    /// encrypted members: the result it reveals anyway.
    #[test]
    fn no_party_can_link_what_it_receives_to_an_item() {
        let mut rng = ChaCha20Rng::seed_from_u64(13);
        for (name, parties) in [
            ("SetIntersectionSize", 2),
            ("SetIntersectionSize", 4),
            ("SetIntersection", 3),
        ] {
            let (inputs, _) = random_inputs(parties, &mut rng);
            let all_items: Vec<Value> = inputs
                .iter()
                .flat_map(|i| i.as_array().unwrap().iter().flat_map(|l| l.as_array().unwrap().clone()))
                .collect();
            let spec = spec(name, parties);
            let transcript = run_recorded(&spec, &inputs, &mut rng).unwrap();
            for (party, received) in transcript.received.iter().enumerate() {
                let key = testing::key_of(&transcript.machines[party]);
                let computable = testing::computable(&key, &spec.context, &all_items);
                for (from, bytes) in received {
                    let message = PsiMessage::from_bytes(*from, bytes).unwrap();
                    if let PsiMessage::Layered { origin, layers, .. } = &message {
                        if *origin as usize == party {
                            assert_eq!(*layers as usize, parties, "{name}: a partial own list came back");
                        }
                    }
                    let (points, shuffled) = testing::points_of(&message);
                    assert!(shuffled, "{name}: party {party} got a list in a known order");
                    let last_hop = matches!(message, PsiMessage::Stripping { .. }) && party == 0;
                    assert!(
                        last_hop || points.iter().all(|p| !computable.contains(p)),
                        "{name}: party {party} can link a point from {from} to an item"
                    );
                }
            }
        }
    }
}
