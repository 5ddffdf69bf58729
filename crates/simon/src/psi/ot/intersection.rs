//! SetIntersection between two parties by OPRF-based PSI (the KKRT protocol): the members,
//! revealed to both, at the cost of symmetric cryptography per item instead of curve operations.
//!
//! Roles: the party with the smaller set (party 0 on a tie) is the *receiver*, which places its
//! items by cuckoo hashing and learns which of them the other holds; the other is the *sender*,
//! which holds the OPRF key. Rounds (each party's first message goes at once, then each step
//! waits for the other's answer):
//! 1. both: `Hello` (set size, a Chou–Orlandi point); the sizes settle the roles;
//! 2. sender: `Choices`, its base-OT points for 512 secret choice bits s, and the code's keys;
//! 3. receiver: `Matrix`, the cuckoo attempt and the OT extension rows u_j (64 bytes a bin);
//! 4. sender: `Outputs`, its OPRF outputs for each item in each of its three bins, sorted;
//! 5. receiver: its items whose output is among them, the members, as `Result`.
//!
//! With an empty set the receiver answers the hellos with the (empty) result. Outputs are cut
//! to 40 + log2(bins) + log2(3·sender items) bits, so that a false match anywhere has
//! probability below 2^−40.

use crate::protocol::{Io, Limits, Microprotocol, PartyIndex, Progress, ProtocolError, check_stop};
use crate::psi::Wire;
use crate::psi::dh::{self, canonical};
use crate::psi::ot::base::{self, Point};
use crate::psi::ot::cuckoo::{self, HASHES, Table};
use crate::psi::ot::extension::{self, Block, Code, ROW, Row, WIDTH};
use crate::psi::ot::{Bytes, Items, ItemsApart, MAX_ITEMS};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What the two parties send each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OtMessage {
    Hello { size: u32, point: Point },
    Choices { code: [Block; 4], points: Vec<Point> },
    Matrix { attempt: u32, rows: Rows },
    Outputs(Bytes),
    Result(Value),
}

/// The OT extension rows of a `Matrix`, in the form the sender computes on (decoded from the
/// wire in one copy, where bytes then rows took two of tens of MB); serde as [`Bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rows(pub Vec<Row>);

impl Serialize for Rows {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Bytes(self.0.as_flattened().to_vec()).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Rows {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Rows, D::Error> {
        let Bytes(bytes) = Bytes::deserialize(deserializer)?;
        rows(&bytes).ok_or_else(|| serde::de::Error::custom("not a whole number of rows"))
    }
}

/// `bytes` as rows, if they are a whole number of them.
fn rows(bytes: &[u8]) -> Option<Rows> {
    let rows = bytes.chunks_exact(ROW);
    rows.remainder()
        .is_empty()
        .then(|| Rows(rows.map(|r| r.try_into().expect("a row")).collect()))
}

/// The smallest padded length of a result.
const MIN_RESULT_BYTES: usize = 256;

impl Wire for OtMessage {
    /// A tag byte, then for `Hello` the size (u32 LE) and the point; for `Choices` the four code
    /// keys and the points; for `Matrix` the attempt (u32 LE) and the rows; for `Outputs` the
    /// outputs; for `Result` its JSON padded with spaces to a power of two (at least 256
    /// bytes), so that its length shows the result's only within a factor of two.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            OtMessage::Hello { size, point } => {
                out.push(1);
                out.extend_from_slice(&size.to_le_bytes());
                out.extend_from_slice(point);
            }
            OtMessage::Choices { code, points } => {
                out.push(2);
                out.extend_from_slice(code.as_flattened());
                out.extend_from_slice(points.as_flattened());
            }
            OtMessage::Matrix { attempt, rows } => {
                out.reserve_exact(5 + rows.0.len() * ROW);
                out.push(3);
                out.extend_from_slice(&attempt.to_le_bytes());
                out.extend_from_slice(rows.0.as_flattened());
            }
            OtMessage::Outputs(outputs) => {
                out.reserve_exact(1 + outputs.0.len());
                out.push(4);
                out.extend_from_slice(&outputs.0);
            }
            OtMessage::Result(value) => {
                out.push(5);
                out.extend(serde_json::to_vec(value).expect("JSON values serialise"));
                out.resize(out.len().max(MIN_RESULT_BYTES).next_power_of_two(), b' ');
            }
        }
        out
    }

    fn from_bytes(from: PartyIndex, bytes: &[u8]) -> Result<OtMessage, ProtocolError> {
        let malformed = |reason: &str| ProtocolError::Malformed {
            from,
            reason: format!("OT PSI message: {reason}"),
        };
        let word = |rest: &[u8]| {
            rest.get(..4)
                .map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes")))
                .ok_or_else(|| malformed("truncated"))
        };
        match bytes.split_first() {
            Some((1, rest)) if rest.len() == 36 => Ok(OtMessage::Hello {
                size: word(rest)?,
                point: rest[4..].try_into().expect("32 bytes"),
            }),
            Some((2, rest)) if rest.len() == 64 + 32 * WIDTH => Ok(OtMessage::Choices {
                code: core::array::from_fn(|k| rest[16 * k..16 * k + 16].try_into().expect("16 bytes")),
                points: rest[64..]
                    .chunks_exact(32)
                    .map(|p| p.try_into().expect("32 bytes"))
                    .collect(),
            }),
            Some((3, rest)) => Ok(OtMessage::Matrix {
                attempt: word(rest)?,
                rows: rows(&rest[4..]).ok_or_else(|| malformed("a matrix of a partial row"))?,
            }),
            Some((4, rest)) => Ok(OtMessage::Outputs(Bytes(rest.to_vec()))),
            Some((5, rest)) => serde_json::from_slice(rest)
                .map(OtMessage::Result)
                .map_err(|e| malformed(&e.to_string())),
            _ => Err(malformed("unknown type or wrong length")),
        }
    }
}

/// Where a party is between messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Stage {
    /// Sent its hello; waits for the other's.
    Hello,
    /// Receiver: placed its items; waits for the sender's choices.
    Placed {
        peer: u32,
        attempt: u32,
        table: Bytes,
    },
    /// Sender: chose s and holds its base-OT keys; waits for the matrix.
    Chose {
        peer: u32,
        s: Bytes,
        keys: Bytes,
        code: [Block; 4],
    },
    /// Receiver: sent the matrix; holds the compared bytes of its own output for each of its
    /// items, in item order.
    Evaluated {
        peer: u32,
        outputs: Bytes,
    },
    /// Sender: sent its outputs (or had nothing to send); waits for the members.
    Sent {
        peer: u32,
    },
    Done,
}

/// One party of a two-party OT SetIntersection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OtSetIntersection {
    context: [u8; 32],
    limits: Limits,
    /// The checked input until `start` reads the set from it (off the runtime's loop).
    input: Option<Value>,
    /// The set: the canonical JSON of each item, sorted; persisted apart ([`ItemsApart`]).
    set: ItemsApart,
    /// This party's Chou–Orlandi scalar, used if it turns out to be the receiver.
    secret: [u8; 32],
    stage: Stage,
    /// The other's answer to this party's hello (its choices, or an empty result) when it
    /// arrives before the other's own hello: taken once that is in.
    early: Option<OtMessage>,
}

/// The party that receives: the one with the smaller set, party 0 on a tie.
fn receiver(sizes: [usize; 2]) -> PartyIndex {
    usize::from(sizes[1] < sizes[0])
}

/// Bytes of an output on the wire: 40 bits beyond the log of the comparisons the receiver makes.
fn output_len(bins: usize, sender_items: usize) -> usize {
    let log = |n: usize| (usize::BITS - n.saturating_sub(1).leading_zeros()) as usize;
    ((40 + log(bins) + log(HASHES * sender_items)).div_ceil(8)).min(16)
}

/// An output cut to its first `len` bytes, as a big-endian integer: integers sort and compare
/// in two machine words where 16-byte arrays take a `memcmp`, and in the same order.
fn cut(output: &Block, len: usize) -> u128 {
    u128::from_be_bytes(*output) & (u128::MAX << (128 - 8 * len))
}

/// The integer of an output's first bytes, as [`cut`] makes it.
fn padded(bytes: &[u8]) -> u128 {
    let mut block = [0u8; 16];
    block[..bytes.len()].copy_from_slice(bytes);
    u128::from_be_bytes(block)
}

/// The first `len` bytes of each output, concatenated: the wire form of the sender's outputs.
fn wire_outputs(outputs: &[u128], len: usize) -> Vec<u8> {
    let mut wire = vec![0u8; outputs.len() * len];
    wire.par_chunks_mut(len)
        .zip(outputs)
        .for_each(|(bytes, output)| bytes.copy_from_slice(&output.to_be_bytes()[..len]));
    wire
}

fn unexpected(from: PartyIndex, what: &str) -> ProtocolError {
    ProtocolError::Unexpected {
        from,
        what: what.into(),
    }
}

impl OtSetIntersection {
    pub fn new(context: [u8; 32], limits: Limits, input: &Value) -> Result<OtSetIntersection, String> {
        dh::check_set_of(input, MAX_ITEMS)?;
        Ok(OtSetIntersection {
            context,
            limits,
            input: Some(input.clone()),
            set: ItemsApart::default(),
            secret: [0; 32],
            stage: Stage::Hello,
            early: None,
        })
    }

    /// The set, whole: [`Microprotocol::receive`] checks it before any step.
    fn items(&self) -> &Items {
        self.set.get().expect("checked before the step")
    }

    /// The set apart from the state, for a store ([`crate::Machine::bulk`]).
    pub fn set(&self) -> &ItemsApart {
        &self.set
    }

    /// Gives back the set of a loaded state ([`crate::Machine::restore_bulk`]).
    pub fn restore_set(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.set.restore(bytes)
    }

    /// The result object, with the members in the order given.
    fn result(&self, members: &[usize]) -> Value {
        // On all cores: an intersection of 2^23 members took seconds on one.
        let members: Vec<Value> = members
            .par_iter()
            .map(|&i| serde_json::from_str(self.items().get(i)).expect("canonical JSON"))
            .collect();
        json!({"size_intersection": members.len(), "intersection": members})
    }

    /// Both sizes are known: the receiver places its items (or ends, if a set is empty); the
    /// sender makes its base-OT choices.
    fn hello(
        &mut self,
        from: PartyIndex,
        size: u32,
        point: Point,
        io: &mut Io<'_, OtMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        if size as usize > MAX_ITEMS {
            return Err(dh::violation(from, format!("a set of {size} items announced")));
        }
        let mut sizes = [0; 2];
        sizes[io.me()] = self.items().len();
        sizes[from] = size as usize;
        let receiving = receiver(sizes) == io.me();
        if sizes.contains(&0) {
            if receiving {
                let result = self.result(&[]);
                io.send(from, OtMessage::Result(result.clone()));
                self.stage = Stage::Done;
                return Ok(Progress::Done(result));
            }
            self.stage = Stage::Sent { peer: size };
            return Ok(Progress::Continue);
        }
        if receiving {
            let values = cuckoo::values(&self.context, self.items(), io.stop())?;
            let bins = cuckoo::table_size(values.len());
            let (attempt, table) = cuckoo::place(&self.context, &values, bins, io.stop())?;
            self.stage = Stage::Placed {
                peer: size,
                attempt,
                table: Bytes(table.0.iter().flat_map(|s| s.to_le_bytes()).collect()),
            };
            return Ok(Progress::Continue);
        }
        let mut s = [0u8; ROW];
        io.rng().fill_bytes(&mut s);
        let choices: Vec<bool> = (0..WIDTH).map(|c| s[c / 8] >> (c % 8) & 1 == 1).collect();
        let (points, keys) = base::receive(&point, &choices, io.rng(), from)?;
        let mut code = [[0u8; 16]; 4];
        code.iter_mut().for_each(|key| io.rng().fill_bytes(key));
        io.send(from, OtMessage::Choices { code, points });
        self.stage = Stage::Chose {
            peer: size,
            s: Bytes(s.to_vec()),
            keys: Bytes(keys.concat()),
            code,
        };
        Ok(Progress::Continue)
    }

    /// Receiver: the base-OT keys, the OT extension rows for the items in their bins, and its
    /// own outputs.
    fn choices(
        &mut self,
        from: PartyIndex,
        code: [Block; 4],
        points: Vec<Point>,
        io: &mut Io<'_, OtMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        let Stage::Placed { peer, attempt, table } = &self.stage else {
            unreachable!("checked by the caller")
        };
        let (peer, attempt) = (*peer, *attempt);
        let table = Table(
            table
                .0
                .chunks_exact(4)
                .map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes")))
                .collect(),
        );
        let pairs = base::send(&self.secret, &points, from)?;
        let values = cuckoo::values(&self.context, self.items(), io.stop())?;
        // An empty bin's input is no item's (their last byte is a hash index below 3).
        let inputs: Vec<Block> = (0..table.0.len())
            .map(|bin| {
                table
                    .slot(bin)
                    .map_or([0xff; 16], |(i, h)| cuckoo::input(&values[i], h))
            })
            .collect();
        let (rows, outputs) = extension::receive(&pairs, &Code::new(&code), &inputs, io.stop())?;
        // Only the bytes that will be compared are kept, in item order: the state is persisted
        // after this step, and 11 bytes an item (at 2^20) are about half of an index and a whole
        // output.
        let len = output_len(table.0.len(), peer as usize);
        let mut kept = vec![0u8; self.items().len() * len];
        for (bin, output) in outputs.iter().enumerate() {
            if let Some((i, _)) = table.slot(bin) {
                kept[i * len..(i + 1) * len].copy_from_slice(&output[..len]);
            }
        }
        io.send(
            from,
            OtMessage::Matrix {
                attempt,
                rows: Rows(rows),
            },
        );
        self.stage = Stage::Evaluated {
            peer,
            outputs: Bytes(kept),
        };
        Ok(Progress::Continue)
    }

    /// Sender: its keys q_j from the rows, and its outputs for every item in each of its bins,
    /// sorted (a uniformly random order to the receiver, who cannot compute them).
    fn matrix(
        &mut self,
        from: PartyIndex,
        attempt: u32,
        rows: Rows,
        io: &mut Io<'_, OtMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        let Stage::Chose { peer, s, keys, code } = &self.stage else {
            unreachable!("checked by the caller")
        };
        let bins = cuckoo::table_size(*peer as usize);
        if attempt >= cuckoo::ATTEMPTS || rows.0.len() != bins {
            return Err(dh::violation(
                from,
                format!("a matrix of {} rows for attempt {attempt}", rows.0.len()),
            ));
        }
        let s: Row = s.0.as_slice().try_into().expect("64 bytes");
        let keys: Vec<Block> = keys
            .0
            .chunks_exact(16)
            .map(|k| k.try_into().expect("16 bytes"))
            .collect();
        let Rows(mut q) = rows;
        extension::send(&keys, &s, &mut q, io.stop())?;
        let values = cuckoo::values(&self.context, self.items(), io.stop())?;
        let candidates = cuckoo::candidates(&self.context, attempt, &values, bins, io.stop())?;
        // Each evaluation as one integer, its bin above its item and hash function (bins and
        // items are below 2^25 and 2^24): in bin order, each batch of evaluations reads a narrow
        // band of the keys q_j (64 bytes a bin, tens of MB in all) instead of one row anywhere
        // per point, and integers sort faster than (bin, input) pairs five times their size.
        // The order of the outputs is lost in their sort below.
        let mut points = vec![0u64; HASHES * values.len()];
        points
            .par_chunks_mut(HASHES)
            .zip(&candidates)
            .enumerate()
            .for_each(|(index, (points, bins))| {
                for (h, (point, bin)) in points.iter_mut().zip(bins).enumerate() {
                    *point = u64::from(*bin) << 32 | (index as u64) << 2 | h as u64;
                }
            });
        drop(candidates);
        points.par_sort_unstable();
        let point = |k: usize| {
            let point = points[k];
            let (index, h) = ((point as u32 >> 2) as usize, (point & 3) as usize);
            ((point >> 32) as u32, cuckoo::input(&values[index], h))
        };
        let len = output_len(bins, self.items().len());
        let output = |output: Block| cut(&output, len);
        let mut outputs = extension::evaluate(&q, &s, &Code::new(code), points.len(), point, output, io.stop())?;
        drop(q);
        check_stop(io.stop())?;
        outputs.par_sort_unstable();
        let wire = wire_outputs(&outputs, len);
        io.send(from, OtMessage::Outputs(Bytes(wire)));
        self.stage = Stage::Sent { peer: *peer };
        Ok(Progress::Continue)
    }

    /// Receiver: its items whose outputs the sender sent are the members.
    fn outputs(
        &mut self,
        from: PartyIndex,
        theirs: Bytes,
        io: &mut Io<'_, OtMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        let Stage::Evaluated { peer, outputs } = &self.stage else {
            unreachable!("checked by the caller")
        };
        let len = output_len(cuckoo::table_size(self.items().len()), *peer as usize);
        if theirs.0.len() != HASHES * *peer as usize * len {
            return Err(dh::violation(
                from,
                format!("{} bytes of outputs for {peer} items", theirs.0.len()),
            ));
        }
        // Their outputs are read where they arrived, as bytes: compared as slices, they are in
        // the order of their integers.
        let theirs = theirs.0;
        if theirs
            .par_chunks_exact(len)
            .zip(theirs[len..].par_chunks_exact(len))
            .any(|(a, b)| a > b)
        {
            return Err(dh::violation(from, "outputs out of order".into()));
        }
        // They are uniformly random and sorted: where each value of their top bits starts
        // (about one output a value) finds any output among them in a few reads, so each of
        // ours is looked up in item order and the members come out in order, where a sort of
        // ours, a merge and a sort of the members read everything several times.
        let bits = (theirs.len() / len).ilog2();
        let bucket = |output: &[u8]| (padded(output) >> (128 - bits)) as usize;
        let mut starts = vec![0u32; (1 << bits) + 1];
        theirs
            .chunks_exact(len)
            .for_each(|output| starts[bucket(output) + 1] += 1);
        for b in 1..starts.len() {
            starts[b] += starts[b - 1];
        }
        let members: Vec<usize> = outputs
            .0
            .par_chunks_exact(len)
            .enumerate()
            .filter(|(_, output)| {
                let b = bucket(output);
                theirs[starts[b] as usize * len..starts[b + 1] as usize * len]
                    .chunks_exact(len)
                    .any(|theirs| theirs == *output)
            })
            .map(|(index, _)| index)
            .collect();
        self.limits.check(members.len() as u64, "the intersection")?;
        let result = self.result(&members);
        io.send(from, OtMessage::Result(result.clone()));
        self.stage = Stage::Done;
        Ok(Progress::Done(result))
    }

    /// Sender: the members the receiver found, each of which must be one of its own items.
    fn members(&mut self, from: PartyIndex, result: Value) -> Result<Progress<Value>, ProtocolError> {
        let Stage::Sent { peer } = self.stage else {
            unreachable!("checked by the caller")
        };
        let bound = self.items().len().min(peer as usize);
        let listed = result["intersection"].as_array().filter(|members| {
            members.len() <= bound
                && result.as_object().is_some_and(|o| o.len() == 2)
                && result["size_intersection"] == json!(members.len())
        });
        let Some(listed) = listed else {
            return Err(dh::violation(from, "a result of another shape or size".into()));
        };
        self.limits.check(listed.len() as u64, "the intersection")?;
        let members: Vec<usize> = listed
            .par_iter()
            .map(|member| self.items().binary_search(&canonical(member)).ok())
            .collect::<Option<_>>()
            .ok_or_else(|| dh::violation(from, "a member that is not in this party's set".into()))?;
        if members.windows(2).any(|w| w[0] >= w[1]) {
            return Err(dh::violation(from, "members repeated or out of order".into()));
        }
        // The members are this party's items, in order, and canonical JSON is one-to-one on
        // JSON values: the result as received is the one its own items would give, so it is
        // the output as it is (not a million items parsed again).
        self.stage = Stage::Done;
        Ok(Progress::Done(result))
    }
}

impl Microprotocol for OtSetIntersection {
    type Message = OtMessage;
    type Output = Value;

    fn start(&mut self, io: &mut Io<'_, OtMessage>) -> Result<Progress<Value>, ProtocolError> {
        self.set = ItemsApart::new(Items::from(dh::read_set(
            &self.input.take().expect("start is called once"),
        )));
        self.secret = base::random_scalar(io.rng());
        let hello = OtMessage::Hello {
            size: self.items().len() as u32,
            point: base::sender_point(&self.secret),
        };
        io.send(1 - io.me(), hello);
        Ok(Progress::Continue)
    }

    fn receive(
        &mut self,
        from: PartyIndex,
        message: OtMessage,
        io: &mut Io<'_, OtMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        // A state loaded without its set (the store keeps it apart) must not step on an empty one.
        if self.set.missing() {
            return Err(ProtocolError::Refused {
                code: "internal",
                reason: "this party's state was loaded without its set".into(),
            });
        }
        match (&self.stage, message) {
            (Stage::Hello, OtMessage::Hello { size, point }) => match self.hello(from, size, point, io)? {
                Progress::Continue => match self.early.take() {
                    Some(early) => self.receive(from, early, io),
                    None => Ok(Progress::Continue),
                },
                done => Ok(done),
            },
            (Stage::Hello, early @ (OtMessage::Choices { .. } | OtMessage::Result(_))) if self.early.is_none() => {
                self.early = Some(early);
                Ok(Progress::Continue)
            }
            (Stage::Placed { .. }, OtMessage::Choices { code, points }) => self.choices(from, code, points, io),
            (Stage::Chose { .. }, OtMessage::Matrix { attempt, rows }) => self.matrix(from, attempt, rows, io),
            (Stage::Evaluated { .. }, OtMessage::Outputs(outputs)) => self.outputs(from, outputs, io),
            (Stage::Sent { .. }, OtMessage::Result(result)) => self.members(from, result),
            _ => Err(unexpected(from, "an OT PSI message out of turn")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::Spec;
    use crate::protocol::never;
    use crate::simulate::{Transcript, run_all, run_recorded};
    use crate::{Machine, Masks};
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};
    use std::collections::BTreeSet;

    fn spec(parameters: Value) -> Spec {
        Spec::new("SetIntersection", &parameters, 2).unwrap().bound_to([6; 32])
    }

    /// Item `i` of a run, as any JSON value: strings, numbers, objects, lists, unicode.
    fn item(i: usize) -> Value {
        match i % 5 {
            0 => json!(format!("ü-{i}-名")),
            1 => json!(i),
            2 => json!({"id": i, "k": [i, "x", null]}),
            3 => json!([i, true]),
            _ => json!(format!("{i}")),
        }
    }

    /// Two sets of `sizes` items sharing `shared`, and their intersection (canonical JSON).
    fn sets(sizes: [usize; 2], shared: usize, offset: usize) -> ([Value; 2], BTreeSet<String>) {
        let own = |p: usize| {
            (0..sizes[p]).map(move |i| {
                if i < shared {
                    i
                } else {
                    offset + (p + 1) * 10_000_000 + i
                }
            })
        };
        let list = |p: usize| own(p).map(item).collect::<Vec<_>>();
        let expected = (0..shared).map(|i| canonical(&item(i))).collect();
        ([json!(list(0)), json!([list(1)])], expected)
    }

    fn members(output: &Value) -> BTreeSet<String> {
        output["result"]["intersection"]
            .as_array()
            .unwrap()
            .iter()
            .map(canonical)
            .collect()
    }

    /// The OT PSI against the plaintext intersection: sizes 0, 1, 2^10 and 2^16, overlaps of
    /// 0 %, 50 % and 100 %, unequal sizes either way round (so either party receives).
    #[test]
    fn the_intersection_matches_the_plaintext() {
        let mut rng = ChaCha20Rng::seed_from_u64(31);
        let spec = spec(json!({}));
        assert_eq!(
            spec.parameters_json(),
            json!({"psi": "ot"}),
            "the default between two parties"
        );
        let mut cases = vec![
            ([0, 0], 0),
            ([0, 5], 0),
            ([5, 0], 0),
            ([1, 1], 0),
            ([1, 1], 1),
            ([1, 7], 1),
        ];
        for n in [1 << 10, 1 << 16] {
            cases.extend([([n, n], 0), ([n, n], n / 2), ([n, n], n)]);
        }
        cases.extend([([3000, 20], 10), ([20, 3000], 20)]);
        for (sizes, shared) in cases {
            let (inputs, expected) = sets(sizes, shared, 0);
            let outputs = run_all(&spec, &inputs, &mut rng).unwrap();
            for output in &outputs {
                assert_eq!(members(output), expected, "{sizes:?}, {shared} shared");
                assert_eq!(output["result"]["size_intersection"], json!(shared));
                assert_eq!(output["inputs"], json!(2));
            }
            assert_eq!(outputs[0], outputs[1], "both parties hold the same result");
        }
    }

    /// The same answer as the DH ring, which `psi = "dh"` still chooses.
    #[test]
    fn the_ring_gives_the_same_answer() {
        let mut rng = ChaCha20Rng::seed_from_u64(32);
        let (inputs, _) = sets([300, 200], 120, 0);
        let dh = spec(json!({"psi": "dh"}));
        let ot = run_all(&spec(json!({"psi": "ot"})), &inputs, &mut rng).unwrap();
        let ring = run_all(&dh, &inputs, &mut rng).unwrap();
        assert_eq!(members(&ot[1]), members(&ring[1]));
        let transcript = run_recorded(&dh, &inputs, &mut rng).unwrap();
        assert!(transcript.machines[0].runs_long());
        let three = Spec::new("SetIntersection", &json!({"psi": "ot"}), 3).unwrap_err();
        assert!(three.to_string().contains("two-party"), "{three}");
        let default = Spec::new("SetIntersection", &json!({}), 3).unwrap();
        assert_eq!(default.parameters_json(), json!({"psi": "dh"}));
        assert!(Spec::new("SetIntersectionSize", &json!({"psi": "ot"}), 2).is_err());
    }

    /// What `party` received, by message kind.
    fn received(transcript: &Transcript, party: usize) -> Vec<OtMessage> {
        transcript.received[party]
            .iter()
            .map(|(from, bytes)| OtMessage::from_bytes(*from, bytes).unwrap())
            .collect()
    }

    /// Pearson's statistic of byte counts against the uniform distribution (255 degrees of
    /// freedom; 330.5 is the 0.1 % point).
    fn uniformity(bytes: &[u8]) -> f64 {
        let mut counts = [0f64; 256];
        bytes.iter().for_each(|b| counts[*b as usize] += 1.0);
        let expected = bytes.len() as f64 / 256.0;
        counts.iter().map(|c| (c - expected).powi(2) / expected).sum()
    }

    /// Pearson's statistic of the 2 × 256 table of two byte samples' counts: are they one
    /// distribution? (255 degrees of freedom.)
    fn homogeneity(a: &[u8], b: &[u8]) -> f64 {
        let (mut ca, mut cb) = ([0f64; 256], [0f64; 256]);
        a.iter().for_each(|x| ca[*x as usize] += 1.0);
        b.iter().for_each(|x| cb[*x as usize] += 1.0);
        let (na, nb) = (a.len() as f64, b.len() as f64);
        (0..256)
            .filter(|&v| ca[v] + cb[v] > 0.0)
            .map(|v| {
                let total = ca[v] + cb[v];
                let (ea, eb) = (total * na / (na + nb), total * nb / (na + nb));
                (ca[v] - ea).powi(2) / ea + (cb[v] - eb).powi(2) / eb
            })
            .sum()
    }

    const CRITICAL: f64 = 330.5;

    /// The sender's view (party 1, the larger set) is independent of the receiver's items
    /// beyond their number: two receiver sets of the same size, one sharing half the sender's
    /// items and one none, give hellos of the same size, matrices of the same length, and
    /// matrix bytes that are uniform and of one distribution (chi-square at 0.1 %), column by
    /// column too (the bits of each of the 512 columns are balanced).
    #[test]
    fn the_senders_view_shows_only_the_receivers_size() {
        let n = 1 << 10;
        let views: Vec<Vec<u8>> = [n / 2, 0]
            .into_iter()
            .enumerate()
            .map(|(run, shared)| {
                let (inputs, _) = sets([n, n + 500], shared, run * 1000);
                let transcript = run_recorded(
                    &spec(json!({})),
                    &inputs,
                    &mut ChaCha20Rng::seed_from_u64(40 + run as u64),
                )
                .unwrap();
                let messages = received(&transcript, 1);
                assert!(matches!(messages[0], OtMessage::Hello { size, .. } if size as usize == n));
                let Some(OtMessage::Matrix { attempt: 0, rows }) = messages.get(1) else {
                    panic!(
                        "the sender's second message is the matrix: {:?}",
                        messages.get(1).map(std::mem::discriminant)
                    )
                };
                assert_eq!(rows.0.len(), cuckoo::table_size(n));
                rows.0.as_flattened().to_vec()
            })
            .collect();
        for view in &views {
            assert!(uniformity(view) < CRITICAL, "{}", uniformity(view));
            let rows = view.len() / ROW;
            let columns: f64 = (0..WIDTH)
                .map(|c| {
                    let ones = view.chunks(ROW).filter(|row| row[c / 8] >> (c % 8) & 1 == 1).count() as f64;
                    (ones - rows as f64 / 2.0).powi(2) / (rows as f64 / 4.0)
                })
                .sum();
            // χ² with 512 degrees of freedom: 614.3 is the 0.1 % point.
            assert!(columns < 614.3, "{columns}");
        }
        assert!(homogeneity(&views[0], &views[1]) < CRITICAL);
    }

    /// The receiver (party 0) learns the intersection and nothing about the sender's other
    /// items: the sender's outputs that match none of the receiver's own are uniform bytes, of
    /// one distribution for two sender sets that differ only outside the intersection; the
    /// ones that match are exactly the members'.
    #[test]
    fn the_receiver_sees_only_the_members() {
        let n = 1 << 10;
        let views: Vec<Vec<u8>> = (0..2u64)
            .map(|run| {
                let (inputs, expected) = sets([n, n + 300], n / 4, run as usize * 1000);
                let spec = spec(json!({}));
                let transcript = run_recorded(&spec, &inputs, &mut ChaCha20Rng::seed_from_u64(50 + run)).unwrap();
                let messages = received(&transcript, 0);
                let Some(OtMessage::Outputs(theirs)) = messages.iter().find(|m| matches!(m, OtMessage::Outputs(_)))
                else {
                    panic!("the receiver got the sender's outputs")
                };
                let len = output_len(cuckoo::table_size(n), n + 300);
                let ours = receivers_outputs(&transcript, &inputs[0], &spec.context);
                let (mut matched, mut rest) = (0, Vec::new());
                for output in theirs.0.chunks(len) {
                    if ours.iter().any(|o| &o[..len] == output) {
                        matched += 1;
                    } else {
                        rest.extend_from_slice(output);
                    }
                }
                assert_eq!(matched, expected.len(), "one match per member");
                assert_eq!(members(&transcript.outputs[0]), expected);
                assert!(uniformity(&rest) < CRITICAL, "{}", uniformity(&rest));
                rest
            })
            .collect();
        assert!(homogeneity(&views[0], &views[1]) < CRITICAL);
    }

    /// Every output the receiver (party 0) can compute: from its secret scalar, the sender's
    /// choices and code, and its own items in their bins.
    fn receivers_outputs(transcript: &Transcript, input: &Value, context: &[u8; 32]) -> Vec<Block> {
        let state = serde_json::to_value(&transcript.machines[0]).unwrap();
        let secret: [u8; 32] =
            serde_json::from_value(state["protocol"]["OtSetIntersection"]["secret"].clone()).unwrap();
        let Some(OtMessage::Choices { code, points }) = received(transcript, 0)
            .into_iter()
            .find(|m| matches!(m, OtMessage::Choices { .. }))
        else {
            panic!("the receiver got the sender's choices")
        };
        let pairs = base::send(&secret, &points, 1).unwrap();
        let values = cuckoo::values(context, &Items::from(dh::read_set(input)), never()).unwrap();
        let bins = cuckoo::table_size(values.len());
        let (_, table) = cuckoo::place(context, &values, bins, never()).unwrap();
        let inputs: Vec<Block> = (0..bins)
            .map(|bin| {
                table
                    .slot(bin)
                    .map_or([0xff; 16], |(i, h)| cuckoo::input(&values[i], h))
            })
            .collect();
        let (_, outputs) = extension::receive(&pairs, &Code::new(&code), &inputs, never()).unwrap();
        outputs
    }

    /// A started machine's state leaves its items out, gives them as its bulk, and, loaded
    /// without them, refuses to step instead of stepping on an empty set.
    #[test]
    fn a_state_is_stored_without_its_items_and_steps_only_with_them() {
        let spec = spec(json!({"psi": "ot"}));
        let ([a, b], _) = sets([200, 300], 100, 0);
        let masks = Masks::default();
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut alice = spec.machine_for(0, &a.into()).unwrap();
        let mut bob = spec.machine_for(1, &b[0].clone().into()).unwrap();
        assert_eq!(alice.bulk(), None, "nothing before the start");
        let hello = alice.start(&mut rng, &masks).unwrap().outgoing.remove(0).1;
        bob.start(&mut rng, &masks).unwrap();

        let state = serde_json::to_string(&bob).unwrap();
        assert!(
            !state.contains("shared"),
            "no item in the state: {}",
            &state[..state.len().min(300)]
        );
        let bulk = bob.bulk().expect("a started machine's items");
        let mut loaded: Machine = serde_json::from_str(&state).unwrap();
        assert!(loaded.lacks_bulk());
        let refused = loaded.clone().receive(0, &hello, &mut rng, &masks).unwrap_err();
        assert_eq!(refused.code(), "internal", "{refused}");
        loaded.restore_bulk(&bulk).unwrap();
        assert!(!loaded.lacks_bulk());
        assert_eq!(
            loaded.receive(0, &hello, &mut rng, &masks).unwrap().outgoing.len(),
            1,
            "bob, the sender, makes his choices"
        );
    }

    /// The matrix in its wire and serde forms, and a matrix of a partial row refused.
    #[test]
    fn a_matrix_round_trips() {
        let matrix = OtMessage::Matrix {
            attempt: 2,
            rows: Rows((0..3u8).map(|i| [i; ROW]).collect()),
        };
        let bytes = matrix.to_bytes();
        assert_eq!(bytes.len(), 5 + 3 * ROW);
        assert_eq!(OtMessage::from_bytes(1, &bytes).unwrap(), matrix);
        assert!(OtMessage::from_bytes(1, &bytes[..bytes.len() - 1]).is_err());
        assert!(OtMessage::from_bytes(1, &bytes[..3]).is_err());
        let json = serde_json::to_string(&matrix).unwrap();
        assert_eq!(serde_json::from_str::<OtMessage>(&json).unwrap(), matrix);
    }

    /// Outputs cut to integers sort as their first bytes do, and go on the wire as those bytes.
    #[test]
    fn cut_outputs_keep_the_order_of_their_bytes() {
        let mut rng = ChaCha20Rng::seed_from_u64(70);
        for len in [6, 11, 16] {
            let outputs: Vec<Block> = (0..1000)
                .map(|i| {
                    let mut block = [0u8; 16];
                    rng.fill_bytes(&mut block);
                    // Runs of equal leading bytes, so that later bytes decide.
                    block[0] = (i % 3) as u8;
                    block
                })
                .collect();
            let mut bytes: Vec<&[u8]> = outputs.iter().map(|o| &o[..len]).collect();
            bytes.sort();
            let mut numbers: Vec<u128> = outputs.iter().map(|o| cut(o, len)).collect();
            numbers.sort();
            assert_eq!(wire_outputs(&numbers, len), bytes.concat(), "len {len}");
        }
    }

    /// Message lengths show the set sizes only: the same sizes with other members give the
    /// same lengths (the result is padded).
    #[test]
    fn message_lengths_show_the_set_sizes_only() {
        let lengths = |shared| {
            let (inputs, _) = sets([200, 300], shared, 0);
            let transcript = run_recorded(&spec(json!({})), &inputs, &mut ChaCha20Rng::seed_from_u64(60)).unwrap();
            let mut lengths: Vec<_> = transcript.deliveries().map(|(f, t, b)| (f, t, b.len())).collect();
            lengths.sort();
            lengths
        };
        assert_eq!(lengths(0), lengths(3));
    }
}
