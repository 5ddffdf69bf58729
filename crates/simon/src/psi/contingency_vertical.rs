//! StatisticsContingencyVertical (2 parties): the contingency table of party 0's attribute
//! against party 1's over the ids both hold, by one DH-PSI over the ids in which every encrypted
//! id carries its category ([`crate::psi::dh`]).
//!
//! Input: a list of `[id, category]` pairs (ids and categories any JSON values; a repeated id
//! keeps its last category, as the reference's dictionary does). Categories are told apart by
//! their canonical JSON, and a row or column is named as StatisticsContingency names it
//! ([`crate::statistics::categorical::object_keys`]: a string as itself unless that is another
//! category's JSON text, then as its own JSON text), so that `1` and `"1"` are two rows.
//!
//! Rounds: each party sends its ids encrypted with its key, sorted, each tagged with the index of
//! its category, plus its list of categories. Party 1 adds its layer to party 0's list, sorts it
//! again (the tags move with their ids) and returns it; party 0 adds its layer to party 1's list.
//! Party 0 now holds both lists fully encrypted with their tags, joins them on the points, counts
//! every (x, y) pair and sends the table to party 1. Messages: 4.
//!
//! Output: `{"table": {x: {y: count}}, "mode": [x, y]}` with every x of party 0's categories and
//! every y of party 1's, zero cells included, integer counts; `mode` is a largest cell.
//!
//! What each party learns: the table, the other's number of ids, the other's categories and how
//! many of the other's ids fall in each of them (the tags travel in the clear). Neither learns
//! which id fell in which cell: party 0 receives its own ids back only fully encrypted and in an
//! order set by party 1's key, party 1 never sees a point it can match. The reference ran one PSI
//! per cell and revealed the whole vertical join (REFERENCE.md §6 W5b).
//!
//! No `dp` ([`NO_DP`]): party 0 counts the cells itself, from the joined tags, and no sum is
//! opened, so there is no masked total into which the parties could put their noise shares;
//! noise that party 0 added alone would hide nothing from party 0, and the guarantee must hold
//! against any n − 1 = 1 party. Counting under masks needs party 1's tags hidden from party 0
//! (encrypted one-hot tags, or shares of them), which is another protocol.

use crate::protocol::{Io, Microprotocol, PartyIndex, Progress, ProtocolError};
use crate::psi::dh::{self, Key, Point, Points, PsiMessage};
use crate::statistics::categorical;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

/// Why a definition with `dp` is refused (as invalid parameters, before anything is sent).
pub const NO_DP: &str = "StatisticsContingencyVertical does not take dp: party 0 joins the two \
    tagged lists and counts every cell in the clear, so no noise share added within the protocol \
    could hide a cell from it, and the guarantee must hold against any one party (collusion = n - 1); \
    see docs/protocols.md";

/// One party's tagged list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Tagged {
    points: Points,
    tags: Vec<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContingencyVertical {
    context: [u8; 32],
    /// The checked input until `start` reads it (off the runtime's loop).
    input: Option<Value>,
    labels: Vec<String>,
    key: Option<Key>,
    /// At party 0: its own list back from party 1, and party 1's list, both fully encrypted.
    mine: Option<Tagged>,
    theirs: Option<(Tagged, Vec<String>)>,
    /// This party's own list's length; at party 1, whether it has returned party 0's list: it
    /// re-encrypts exactly one list, else party 0 could test guesses against party 1's ids.
    #[serde(default)]
    own_size: usize,
    #[serde(default)]
    returned: bool,
}

impl ContingencyVertical {
    /// Checks the input's shape (cheap, before anything is sent); `start` reads it.
    pub fn new(context: [u8; 32], input: &Value) -> Result<ContingencyVertical, String> {
        let Value::Array(pairs) = input else {
            return Err(format!(
                "input must be a list of [id, category] pairs, got {}",
                crate::order::doubles::kind(input)
            ));
        };
        if let Some(pair) = pairs.iter().find(|p| p.as_array().is_none_or(|p| p.len() != 2)) {
            return Err(format!("every input item must be an [id, category] pair, got {pair}"));
        }
        if pairs.len() > dh::MAX_ITEMS {
            return Err(format!("at most {} ids per party, got {}", dh::MAX_ITEMS, pairs.len()));
        }
        Ok(ContingencyVertical {
            context,
            input: Some(input.clone()),
            labels: Vec::new(),
            key: None,
            mine: None,
            theirs: None,
            own_size: 0,
            returned: false,
        })
    }

    /// The ids (canonical JSON) with the index of their category, and the categories' canonical
    /// JSON, sorted.
    fn read(input: &Value) -> (Vec<(String, u32)>, Vec<String>) {
        let mut by_id: BTreeMap<String, String> = BTreeMap::new();
        for pair in input.as_array().into_iter().flatten() {
            if let Some([id, category]) = pair.as_array().map(Vec::as_slice) {
                by_id.insert(dh::canonical(id), dh::canonical(category));
            }
        }
        let labels: Vec<String> = by_id
            .values()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let ids = by_id
            .into_iter()
            .map(|(id, label)| {
                let tag = labels.binary_search(&label).expect("a label of this set") as u32;
                (id, tag)
            })
            .collect();
        (ids, labels)
    }

    fn key(&self) -> &Key {
        self.key.as_ref().expect("started")
    }

    /// Adds this party's layer and sorts, keeping each tag with its point.
    fn reencrypt(
        &self,
        from: PartyIndex,
        points: Points,
        tags: Vec<u32>,
        stop: &AtomicBool,
    ) -> Result<Tagged, ProtocolError> {
        let mut points = points.0;
        dh::reencrypt(self.key(), false, &mut points, from, stop)?;
        sorted(points, tags, from)
    }

    /// Party 0, with both lists: the table.
    fn join(&self, io: &mut Io<'_, PsiMessage>) -> Progress<Value> {
        let (Some(mine), Some((theirs, their_labels))) = (&self.mine, &self.theirs) else {
            return Progress::Continue;
        };
        let mut counts = vec![vec![0u64; their_labels.len()]; self.labels.len()];
        for (point, &x) in mine.points.0.iter().zip(&mine.tags) {
            if let Ok(at) = theirs.points.0.binary_search(point) {
                counts[x as usize][theirs.tags[at] as usize] += 1;
            }
        }
        let (rows, columns) = (names(&self.labels), names(their_labels));
        let mut mode = None;
        let mut table = Map::new();
        for (x, row) in rows.iter().zip(&counts) {
            let mut cells = Map::new();
            for (y, &count) in columns.iter().zip(row) {
                if mode.is_none_or(|(_, _, best)| count > best) {
                    mode = Some((x, y, count));
                }
                cells.insert(y.clone(), json!(count));
            }
            table.insert(x.clone(), Value::Object(cells));
        }
        let mode = mode.map(|(x, y, _)| json!([x, y])).unwrap_or(Value::Null);
        let result = json!({"table": table, "mode": mode});
        io.send(1, PsiMessage::Result(result.clone()));
        Progress::Done(result)
    }
}

/// The table keys of categories given by their canonical JSON texts.
fn names(texts: &[String]) -> Vec<String> {
    let values: Vec<Option<String>> = texts
        .iter()
        .map(|text| match serde_json::from_str(text) {
            Ok(Value::String(s)) => Some(s),
            _ => None,
        })
        .collect();
    let named: Vec<(&str, Option<&str>)> = texts
        .iter()
        .zip(&values)
        .map(|(t, v)| (t.as_str(), v.as_deref()))
        .collect();
    categorical::object_keys(&named)
}

/// Sorts (point, tag) pairs by point (the shuffle), checking the tags and rejecting duplicates.
fn sorted(points: Vec<Point>, tags: Vec<u32>, from: PartyIndex) -> Result<Tagged, ProtocolError> {
    if tags.len() != points.len() {
        return Err(ProtocolError::Malformed {
            from,
            reason: format!("{} points but {} categories", points.len(), tags.len()),
        });
    }
    let mut pairs: Vec<(Point, u32)> = points.into_iter().zip(tags).collect();
    rayon::slice::ParallelSliceMut::par_sort_unstable(&mut pairs[..]);
    if pairs.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(ProtocolError::Malformed {
            from,
            reason: "a list holds the same element twice".into(),
        });
    }
    let (points, tags) = pairs.into_iter().unzip();
    Ok(Tagged {
        points: Points(points),
        tags,
    })
}

impl Microprotocol for ContingencyVertical {
    type Message = PsiMessage;
    type Output = Value;

    fn start(&mut self, io: &mut Io<'_, PsiMessage>) -> Result<Progress<Value>, ProtocolError> {
        self.key = Some(Key::random(io.rng()));
        let (ids, labels) = Self::read(&self.input.take().expect("start is called once"));
        self.labels = labels;
        let (ids, tags): (Vec<String>, Vec<u32>) = ids.into_iter().unzip();
        let points = dh::encrypt_items(self.key(), &self.context, &ids, io.stop())?;
        let own = sorted(points, tags, io.me())?;
        self.own_size = own.points.len();
        let me = io.me() as u32;
        io.send(
            1 - io.me(),
            PsiMessage::Layered {
                origin: me,
                layers: 1,
                points: own.points,
                tags: own.tags,
                labels: self.labels.clone(),
            },
        );
        Ok(Progress::Continue)
    }

    fn receive(
        &mut self,
        from: PartyIndex,
        message: PsiMessage,
        io: &mut Io<'_, PsiMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        let unexpected = |what: &str| ProtocolError::Unexpected {
            from,
            what: what.into(),
        };
        let me = io.me();
        match message {
            PsiMessage::Layered {
                origin,
                layers,
                points,
                tags,
                labels,
            } => {
                let bound = if origin as usize == me {
                    self.labels.len()
                } else {
                    labels.len()
                };
                if tags.iter().any(|&t| t as usize >= bound) {
                    return Err(ProtocolError::Malformed {
                        from,
                        reason: "a category index out of range".into(),
                    });
                }
                match (me, origin, layers) {
                    // Party 1 adds its layer to party 0's list and returns it.
                    (1, 0, 1) if !self.returned => {
                        self.returned = true;
                        let back = self.reencrypt(from, points, tags, io.stop())?;
                        io.send(
                            0,
                            PsiMessage::Layered {
                                origin: 0,
                                layers: 2,
                                points: back.points,
                                tags: back.tags,
                                labels: Vec::new(),
                            },
                        );
                        Ok(Progress::Continue)
                    }
                    (0, 1, 1) if self.theirs.is_none() => {
                        self.theirs = Some((self.reencrypt(from, points, tags, io.stop())?, labels));
                        Ok(self.join(io))
                    }
                    (0, 0, 2) if self.mine.is_none() && points.len() != self.own_size => Err(dh::violation(
                        from,
                        format!(
                            "our list came back with {} ids, we sent {}",
                            points.len(),
                            self.own_size
                        ),
                    )),
                    (0, 0, 2) if self.mine.is_none() => {
                        self.mine = Some(Tagged { points, tags });
                        Ok(self.join(io))
                    }
                    _ => Err(unexpected("a list out of turn")),
                }
            }
            PsiMessage::Result(result) if me == 1 => Ok(Progress::Done(result)),
            _ => Err(unexpected("a message out of turn")),
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

    fn spec() -> Spec {
        Spec::new("StatisticsContingencyVertical", &json!({}), 2)
            .unwrap()
            .bound_to([6; 32])
    }

    #[test]
    fn the_reference_vector() {
        let inputs = [
            json!([
                ["A", "male"],
                ["B", "female"],
                ["C", "male"],
                ["D", "female"],
                ["E", "male"],
                ["F", "male"]
            ]),
            json!([
                ["A", "non-smoker"],
                ["B", "smoker"],
                ["C", "smoker"],
                ["D", "non-smoker"],
                ["E", "non-smoker"],
                ["G", "non-smoker"]
            ]),
        ];
        let outputs = run_all(&spec(), &inputs, &mut ChaCha20Rng::seed_from_u64(1)).unwrap();
        let want = json!({"inputs": 2, "result": {
            "mode": ["male", "non-smoker"],
            "table": {"female": {"non-smoker": 1, "smoker": 1}, "male": {"non-smoker": 2, "smoker": 1}}}});
        assert_eq!(outputs, [want.clone(), want]);
    }

    #[test]
    fn the_table_matches_a_plaintext_join_with_zero_cells() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let xs = ["a", "b", "c"];
        let ys = [json!(1), json!("y"), json!(null), json!("unused")];
        let mut left = Vec::new();
        let mut right = Vec::new();
        let mut want = [[0u64; 4]; 3];
        for id in 0..300u32 {
            let (x, y) = ((rng.next_u32() % 3) as usize, (rng.next_u32() % 3) as usize);
            let id = if id % 2 == 0 {
                json!(id)
            } else {
                json!(format!("id-{id}"))
            };
            let (in_left, in_right) = (rng.next_u32() % 4 != 0, rng.next_u32() % 4 != 0);
            if in_left {
                left.push(json!([id, xs[x]]));
            }
            if in_right {
                right.push(json!([id, ys[y]]));
            }
            if in_left && in_right {
                want[x][y] += 1;
            }
        }
        right.push(json!(["nobody", "unused"]));
        let outputs = run_all(&spec(), &[json!(left), json!(right)], &mut rng).unwrap();
        assert_eq!(outputs[0], outputs[1]);
        let table = &outputs[0]["result"]["table"];
        for (x, row) in xs.iter().zip(want) {
            for (y, count) in ys.iter().zip(row) {
                let label = y.as_str().map(String::from).unwrap_or_else(|| y.to_string());
                assert_eq!(table[x][label], json!(count), "cell {x} {y}");
            }
        }
        let error = Spec::new("StatisticsContingencyVertical", &json!({}), 3).unwrap_err();
        assert_eq!(error.code(), "invalid_parameters");
        assert_eq!(spec().machine(0, &json!([["a"]])).unwrap_err().code(), "invalid_input");
    }

    /// Tables of the same shape whose counts differ, from categories of different names, give
    /// messages of the same lengths.
    #[test]
    fn message_lengths_show_the_shapes_only() {
        let lengths = |left: Value, right: Value| {
            run_recorded(&spec(), &[left, right], &mut ChaCha20Rng::seed_from_u64(4))
                .unwrap()
                .lengths()
        };
        let pairs = |ids: std::ops::Range<u32>, categories: [&str; 2]| {
            json!(ids.map(|i| json!([i, categories[i as usize % 2]])).collect::<Vec<_>>())
        };
        assert_eq!(
            lengths(
                pairs(0..40, ["female", "male"]),
                pairs(30..70, ["smoker", "non-smoker"])
            ),
            lengths(pairs(0..40, ["f", "m"]), pairs(5..45, ["yes", "no"])),
        );
    }

    /// Neither party receives a point it could compute from an id with its own key, and every
    /// list arrives sorted: party 0 gets its own ids back only fully encrypted, in party 1's
    /// order, so it cannot tell which of its ids fell in which cell.
    #[test]
    fn no_id_to_cell_link() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let ids: Vec<Value> = (0..50).map(|i| json!(format!("id{i}"))).collect();
        let left: Vec<Value> = ids.iter().map(|id| json!([id, "x"])).collect();
        let right: Vec<Value> = ids[10..].iter().map(|id| json!([id, "y"])).collect();
        let transcript = run_recorded(&spec(), &[json!(left), json!(right)], &mut rng).unwrap();
        for (party, received) in transcript.received.iter().enumerate() {
            let key = testing::key_of(&transcript.machines[party]);
            let computable = testing::computable(&key, &spec().context, &ids);
            for (from, bytes) in received {
                let message = PsiMessage::from_bytes(*from, bytes).unwrap();
                let (points, shuffled) = testing::points_of(&message);
                assert!(shuffled, "party {party} got a list in a known order");
                assert!(
                    points.iter().all(|p| !computable.contains(p)),
                    "party {party} links a point"
                );
            }
        }
    }
}
