//! A dishonest party 0 against the PSI protocols, in the simulator: it replays its list, injects
//! single-item lists of guesses, sends lists out of turn, and hands the stripping chain a
//! complete list instead of the intersection. Every honest party that receives such a message
//! refuses it as a protocol violation naming party 0, before it answers anything, so party 0
//! learns nothing from it.

use crate::machine::{EngineError, Machine, Spec};
use crate::masks::Masks;
use crate::protocol::{PartyIndex, never};
use crate::psi::dh::{self, Key, Points, PsiMessage, testing};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};
use std::collections::VecDeque;

/// What party 0 does with one of its messages: the messages to deliver instead.
type Tamper<'a> = dyn FnMut(&Run, PartyIndex, PsiMessage) -> Vec<PsiMessage> + 'a;

struct Run {
    spec: Spec,
    inputs: Vec<Value>,
    machines: Vec<Machine>,
}

impl Run {
    /// Every party's key (they are drawn at the start).
    fn keys(&self) -> Vec<Key> {
        self.machines.iter().map(testing::key_of).collect()
    }

    /// Party `j`'s set under every party's key, sorted: its complete list.
    fn complete(&self, j: usize) -> Points {
        let keys = self.keys();
        let mut points =
            dh::encrypt_items(&keys[0], &self.spec.context, &dh::read_set(&self.inputs[j]), never()).unwrap();
        for key in &keys[1..] {
            dh::reencrypt(key, false, &mut points, 0, never()).unwrap();
        }
        points.sort();
        Points(points)
    }
}

/// How a dishonest run ended: the honest party that refused, its error, every point party 0
/// received, and the run's keys and sets.
struct Outcome {
    party: PartyIndex,
    error: EngineError,
    received: Vec<dh::Point>,
    keys: Vec<Key>,
    context: [u8; 32],
}

/// Runs the computation in FIFO order with every message of party 0 through `tamper`, until the
/// first engine error.
fn run(spec: Spec, inputs: Vec<Value>, tamper: &mut Tamper<'_>) -> Outcome {
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let masks = Masks::dealt(inputs.len(), &mut rng);
    let machines = inputs
        .iter()
        .enumerate()
        .map(|(me, i)| spec.machine(me, i).unwrap())
        .collect();
    let mut run = Run { spec, inputs, machines };
    let mut queue: VecDeque<(PartyIndex, PartyIndex, Vec<u8>)> = VecDeque::new();
    for (me, (machine, masks)) in run.machines.iter_mut().zip(&masks).enumerate() {
        let step = machine.start(&mut rng, masks).unwrap();
        queue.extend(step.outgoing.into_iter().map(|(to, bytes)| (me, to, bytes)));
    }
    let mut received = Vec::new();
    while let Some((from, to, bytes)) = queue.pop_front() {
        let deliveries = if from == 0 {
            let message = PsiMessage::from_bytes(0, &bytes).unwrap();
            tamper(&run, to, message).iter().map(PsiMessage::to_bytes).collect()
        } else {
            if to == 0 {
                received.extend(testing::points_of(&PsiMessage::from_bytes(from, &bytes).unwrap()).0);
            }
            vec![bytes]
        };
        for bytes in deliveries {
            match run.machines[to].receive(from, &bytes, &mut rng, &masks[to]) {
                Ok(step) => queue.extend(step.outgoing.into_iter().map(|(next, bytes)| (to, next, bytes))),
                Err(error) => {
                    return Outcome {
                        party: to,
                        error,
                        received,
                        keys: run.keys(),
                        context: run.spec.context,
                    };
                }
            }
        }
    }
    panic!("every party finished: the deviation went unnoticed");
}

/// The ring, also between two parties (where SetIntersection defaults to the OT PSI).
fn spec(name: &str, parties: usize) -> Spec {
    let ring = if name == "SetIntersection" {
        json!({"psi": "dh"})
    } else {
        json!({})
    };
    Spec::new(name, &ring, parties).unwrap().bound_to([9; 32])
}

/// Overlapping sets, none inside another.
fn sets(parties: usize) -> Vec<Value> {
    (0..parties)
        .map(|p| {
            json!(
                (0..30)
                    .filter(|i| (i + p) % 3 != 0)
                    .map(|i| format!("item-{i}"))
                    .collect::<Vec<_>>()
            )
        })
        .collect()
}

/// An honest party refused, naming party 0, and party 0 received no point it could link to any
/// of `secrets` (one it could compute from the item with its own key): what it receives under
/// the others' keys it cannot link without them.
fn assert_refused(name: &str, parties: usize, attack: &str, outcome: Outcome, secrets: &[Value]) {
    let Outcome {
        party,
        error,
        received,
        keys,
        context,
    } = outcome;
    assert_ne!(party, 0, "{name} n={parties} {attack}");
    assert_eq!(
        error.code(),
        "protocol_violation",
        "{name} n={parties} {attack}: {error}"
    );
    assert_eq!(error.culprit(), Some(0), "{name} n={parties} {attack}: {error}");
    let linkable = testing::computable(&keys[0], &context, secrets);
    assert!(
        received.iter().all(|p| !linkable.contains(p)),
        "{name} n={parties} {attack}: party 0 received a point it can link to a secret item"
    );
}

/// An item no party holds: whatever party 0 receives of it comes from its injection.
fn guessed() -> Value {
    json!("a guess")
}

/// The single-item list of a guess, encrypted with party 0's key, as its own list.
fn guess(run: &Run) -> Points {
    let items = [dh::canonical(&guessed())];
    Points(dh::encrypt_items(&run.keys()[0], &run.spec.context, &items, never()).unwrap())
}

fn own_list(message: &PsiMessage) -> bool {
    matches!(
        message,
        PsiMessage::Layered {
            origin: 0,
            layers: 1,
            ..
        }
    )
}

#[test]
fn replays_and_injected_lists_are_refused_naming_party_0() {
    for (name, parties) in [
        ("SetIntersection", 2),
        ("SetIntersection", 3),
        ("SetIntersectionSize", 2),
        ("SetIntersectionSize", 3),
        ("StatisticsContingencyVertical", 2),
    ] {
        let inputs = || {
            if name == "StatisticsContingencyVertical" {
                sets(2)
                    .iter()
                    .map(|set| {
                        json!(
                            set.as_array()
                                .unwrap()
                                .iter()
                                .map(|id| json!([id, "x"]))
                                .collect::<Vec<_>>()
                        )
                    })
                    .collect()
            } else {
                sets(parties)
            }
        };
        let replay = run(spec(name, parties), inputs(), &mut |_, _, message| {
            if own_list(&message) {
                vec![message.clone(), message]
            } else {
                vec![message]
            }
        });
        assert_refused(name, parties, "replay", replay, &[]);
        let injected = run(spec(name, parties), inputs(), &mut |run, _, message| {
            if !own_list(&message) {
                return vec![message];
            }
            let PsiMessage::Layered { tags, labels, .. } = &message else {
                unreachable!()
            };
            let single = PsiMessage::Layered {
                origin: 0,
                layers: 1,
                points: guess(run),
                tags: tags.first().map(|&t| vec![t]).unwrap_or_default(),
                labels: labels.clone(),
            };
            vec![message, single]
        });
        assert_refused(name, parties, "a second, single-item list", injected, &[guessed()]);
        if parties == 3 {
            let out_of_turn = run(spec(name, parties), inputs(), &mut |run, to, message| {
                if to != 1 || !own_list(&message) {
                    return vec![message];
                }
                vec![
                    message,
                    PsiMessage::Layered {
                        origin: 2,
                        layers: 2,
                        points: guess(run),
                        tags: Vec::new(),
                        labels: Vec::new(),
                    },
                ]
            });
            assert_refused(name, parties, "a list out of turn", out_of_turn, &[guessed()]);
        }
    }
}

/// Party 0 asks the stripping chain to strip another party's complete list (an offline
/// dictionary attack on its items), or strips at all where the protocol reveals only a size.
#[test]
fn a_complete_list_sent_for_stripping_is_refused_naming_party_0() {
    for parties in [2, 3] {
        for victim in 1..parties {
            let outcome = run(
                spec("SetIntersection", parties),
                sets(parties),
                &mut |run, _, message| match message {
                    PsiMessage::Stripping { list, pad_to, .. } => vec![PsiMessage::Stripping {
                        intersection: run.complete(victim),
                        list,
                        pad_to,
                    }],
                    other => vec![other],
                },
            );
            let victims_own: Vec<Value> = sets(parties)[victim]
                .as_array()
                .unwrap()
                .iter()
                .filter(|item| !sets(parties).iter().all(|set| set.as_array().unwrap().contains(item)))
                .cloned()
                .collect();
            let attack = format!("party {victim}'s list stripped");
            assert_refused("SetIntersection", parties, &attack, outcome, &victims_own);
        }
        let outcome = run(
            spec("SetIntersectionSize", parties),
            sets(parties),
            &mut |run, to, message| match message {
                PsiMessage::Result(_) if to == 1 => vec![PsiMessage::Stripping {
                    intersection: run.complete(1),
                    list: Points::default(),
                    pad_to: 30,
                }],
                other => vec![other],
            },
        );
        assert_refused("SetIntersectionSize", parties, "stripping", outcome, &[]);
    }
}
