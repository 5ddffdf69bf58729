//! The Diffie-Hellman PSI building block: items hashed to Ristretto255, encrypted with one secret
//! scalar per party per computation, lists re-encrypted and shuffled at every hop of a ring.
//!
//! `E_k(x) = k·H(context, x)` is commutative, so an item's encryption under every party's key does
//! not depend on the order in which the keys were applied: equal items meet as equal points.
//! `H` maps SHA-512 of a domain separator, the computation's context (the digest of its id and
//! definition) and the item's canonical JSON to the group (Ristretto's uniform map), so points
//! of two computations cannot be linked. Under DDH a point `k·P` looks random to anyone without
//! `k`; a list is "shuffled" by sorting it by its new encoding, which is a uniformly random
//! permutation to everybody but the party that holds the key it was just encrypted with.
//!
//! This module owns the group arithmetic (on all cores with rayon; the curve work of a step is
//! the only heavy part of these protocols), the compact list type ([`Points`]: 32 bytes an
//! element on the wire and base64 in persisted JSON state), the wire form of PSI messages, the
//! reading of a party's set from its input, and the [`Ring`] every PSI protocol runs.

use crate::order::doubles::kind;
use crate::protocol::{Io, PartyIndex, ProtocolError, check_stop};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use rayon::prelude::*;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use sha2::{Digest, Sha512};
use std::sync::atomic::AtomicBool;

/// Separates this hash to the group from every other use of SHA-512 on the same bytes.
const DOMAIN: &[u8] = b"fsc/psi/v1/item";

/// The most items a party may put into one PSI: 2^22, a list of 128 MiB of points, which a
/// receiving node's default budget for a sender's pending chunks (256 MiB) holds.
pub const MAX_ITEMS: usize = 1 << 22;

/// A compressed Ristretto point: what travels and is compared.
pub type Point = [u8; 32];

/// A list of compressed points: raw 32-byte elements on the wire, base64 in JSON state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Points(pub Vec<Point>);

impl Serialize for Points {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&BASE64.encode(self.0.as_flattened()))
    }
}

impl<'de> Deserialize<'de> for Points {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Points, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = BASE64.decode(text).map_err(serde::de::Error::custom)?;
        Points::from_bytes(&bytes).ok_or_else(|| serde::de::Error::custom("points are 32 bytes each"))
    }
}

impl Points {
    pub fn from_bytes(bytes: &[u8]) -> Option<Points> {
        if bytes.len() % 32 != 0 {
            return None;
        }
        Some(Points(
            bytes
                .chunks_exact(32)
                .map(|c| c.try_into().expect("chunks of 32"))
                .collect(),
        ))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A party's secret scalar for one computation, drawn from the engine's RNG and persisted with
/// the protocol's state (a restart must keep it: lists already sent are encrypted under it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Key(Points);

impl Key {
    pub fn random(rng: &mut dyn rand_core::RngCore) -> Key {
        let mut wide = [0u8; 64];
        rng.fill_bytes(&mut wide);
        let scalar = Scalar::from_bytes_mod_order_wide(&wide);
        Key(Points(vec![scalar.to_bytes()]))
    }

    fn scalar(&self) -> Scalar {
        Scalar::from_bytes_mod_order(self.0.0[0])
    }
}

/// The canonical encoding of an item: its compact JSON with object keys sorted (serde_json's
/// default map) and numbers as written, so `"A"` is the reference's string and `1` is not `1.0`.
pub fn canonical(item: &Value) -> String {
    serde_json::to_string(item).expect("JSON values serialise")
}

pub(crate) fn hash_to_group(context: &[u8; 32], canonical: &[u8]) -> RistrettoPoint {
    let mut hasher = Sha512::new();
    hasher.update(DOMAIN);
    hasher.update(context);
    hasher.update((canonical.len() as u64).to_le_bytes());
    hasher.update(canonical);
    RistrettoPoint::from_uniform_bytes(&hasher.finalize().into())
}

/// Points per batch of encodings (one field inversion each), and per rayon task.
const BATCH: usize = 1024;

/// The encodings of `scalar·P` for every P. Encoding a point takes an inverse square root, but
/// the encodings of doubles come in a batch with one inversion (`double_and_compress_batch`), so
/// each P is multiplied by scalar/2 and doubled: about a tenth less curve work per element.
fn multiply_and_encode(scalar: Scalar, points: impl Iterator<Item = RistrettoPoint>) -> Vec<Point> {
    let half = scalar * Scalar::from(2u8).invert();
    let halves: Vec<RistrettoPoint> = points.map(|p| p * half).collect();
    RistrettoPoint::double_and_compress_batch(&halves)
        .into_iter()
        .map(|c| c.to_bytes())
        .collect()
}

/// `key·H(context, item)` for every item, in the items' order; stopped between batches once
/// `stop` is set.
pub fn encrypt_items(
    key: &Key,
    context: &[u8; 32],
    items: &[String],
    stop: &AtomicBool,
) -> Result<Vec<Point>, ProtocolError> {
    let scalar = key.scalar();
    let batches: Vec<Vec<Point>> = items
        .par_chunks(BATCH)
        .map(|chunk| {
            check_stop(stop)?;
            Ok(multiply_and_encode(
                scalar,
                chunk.iter().map(|item| hash_to_group(context, item.as_bytes())),
            ))
        })
        .collect::<Result<_, ProtocolError>>()?;
    Ok(batches.concat())
}

/// Multiplies every point by `key` (or its inverse, to strip a layer), in place; stopped between
/// batches once `stop` is set.
pub fn reencrypt(
    key: &Key,
    invert: bool,
    points: &mut [Point],
    from: PartyIndex,
    stop: &AtomicBool,
) -> Result<(), ProtocolError> {
    let scalar = if invert { key.scalar().invert() } else { key.scalar() };
    points.par_chunks_mut(BATCH).try_for_each(|chunk| {
        check_stop(stop)?;
        let decoded = chunk
            .iter()
            .map(|point| CompressedRistretto(*point).decompress())
            .collect::<Option<Vec<_>>>()
            .ok_or(ProtocolError::Malformed {
                from,
                reason: "an element is not a Ristretto255 point".into(),
            })?;
        chunk.copy_from_slice(&multiply_and_encode(scalar, decoded.into_iter()));
        Ok(())
    })
}

/// Sorts a list (the shuffle) and rejects duplicates, which an honest list of a set never has.
pub fn shuffle(points: &mut [Point], from: PartyIndex) -> Result<(), ProtocolError> {
    points.par_sort_unstable();
    if points.windows(2).any(|w| w[0] == w[1]) {
        return Err(ProtocolError::Malformed {
            from,
            reason: "a list holds the same element twice".into(),
        });
    }
    Ok(())
}

/// The lists of a party's input, as the reference reads it: a list of lists is one set per list
/// and the party's set is their intersection; a flat list (of anything but lists) is one set.
/// Each holds at most `max` items.
fn lists(input: &Value, max: usize) -> Result<Vec<&[Value]>, String> {
    let Value::Array(outer) = input else {
        return Err(format!(
            "input must be a list of lists of items (or one list of items), got {}",
            kind(input)
        ));
    };
    let lists: Vec<&[Value]> = if !outer.is_empty() && outer.iter().all(Value::is_array) {
        outer.iter().filter_map(Value::as_array).map(Vec::as_slice).collect()
    } else {
        vec![outer.as_slice()]
    };
    if let Some(long) = lists.iter().find(|list| list.len() > max) {
        return Err(format!("at most {max} items per list, got {}", long.len()));
    }
    Ok(lists)
}

/// Checks a party's input (cheap: its shape and size), so that bad input is refused before
/// anything is sent; [`read_set`] does the work later, off the runtime's loop.
pub fn check_set(input: &Value) -> Result<(), String> {
    check_set_of(input, MAX_ITEMS)
}

/// [`check_set`] with lists of at most `max` items (the OT PSI takes more than the ring).
pub fn check_set_of(input: &Value, max: usize) -> Result<(), String> {
    lists(input, max).map(drop)
}

/// A party's set from its (checked) input: the canonical JSON of its items, sorted. Items are any
/// JSON values, equal when their canonical JSON is. Each list is serialised and sorted on all
/// cores and the lists are intersected by merging: a million items take a fraction of what a
/// `BTreeSet` of them did (one allocation per node, cache misses at every comparison).
pub fn read_set(input: &Value) -> Vec<String> {
    let mut set: Option<Vec<String>> = None;
    for list in lists(input, usize::MAX).unwrap_or_default() {
        // Each item is written into a reused buffer and copied out at its length:
        // `serde_json::to_string` gives every string 128 bytes, which for a million short items
        // kept six times their size in fresh memory.
        let mut this: Vec<String> = list
            .par_iter()
            .map_init(Vec::new, |buffer, item| {
                buffer.clear();
                serde_json::to_writer(&mut *buffer, item).expect("JSON values serialise");
                String::from_utf8(buffer.to_vec()).expect("serde_json writes UTF-8")
            })
            .collect();
        this.par_sort_unstable();
        this.dedup();
        set = Some(match set {
            None => this,
            Some(set) => sorted_intersection(set, &this),
        });
    }
    set.unwrap_or_default()
}

/// The items of `a` that are also in `b`, both sorted and without repeats.
fn sorted_intersection(a: Vec<String>, b: &[String]) -> Vec<String> {
    let mut rest = b.iter().peekable();
    a.into_iter()
        .filter(|item| {
            while rest.next_if(|other| *other < item).is_some() {}
            rest.peek().is_some_and(|other| *other == item)
        })
        .collect()
}

/// What PSI parties send each other (the serde form is for the trait; the wire form is
/// [`PsiMessage::to_bytes`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PsiMessage {
    /// Party `origin`'s list after `layers` encryptions, sorted; `tags` (empty, or one per point)
    /// and `labels` ride along unencrypted (the vertical contingency table's categories).
    Layered {
        origin: u32,
        layers: u32,
        points: Points,
        tags: Vec<u32>,
        labels: Vec<String>,
    },
    /// A party's set size, announced at the start to every party but its successor (which sees
    /// its list): every hop checks a list against it.
    Size(u32),
    /// The fully encrypted intersection on its way round the stripping chain: `intersection` as
    /// party 0 found it, and `list`, the same points with the layers of the parties passed so far
    /// removed (empty from party 0, where nothing is removed yet). Both are padded to `pad_to`
    /// points on the wire, so that the message's length shows the bound, not the intersection.
    Stripping {
        intersection: Points,
        list: Points,
        pad_to: u32,
    },
    /// The result, as JSON: the members, a size or a table (padded to a power of two on the
    /// wire, so that its length shows the result's size only within a factor of two).
    Result(Value),
}

/// The smallest padded length of a result, and of the labels of a list.
const MIN_RESULT_BYTES: usize = 256;
const MIN_LABELS_BYTES: usize = 256;

impl PsiMessage {
    /// 1 tag byte, then for `Layered`: origin, layers, count (u32 LE), the points (32 bytes
    /// each), the tags (u32 LE each), the labels as JSON; for `Size`: the size; for
    /// `Stripping`: the count, the padding bound (u32 LE), both lists padded with zero bytes to
    /// the bound; for `Result`: its JSON, padded with spaces.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            PsiMessage::Layered {
                origin,
                layers,
                points,
                tags,
                labels,
            } => {
                let mut out = Vec::with_capacity(13 + points.len() * 32 + tags.len() * 4);
                out.push(1);
                for n in [*origin, *layers, points.len() as u32] {
                    out.extend_from_slice(&n.to_le_bytes());
                }
                out.extend_from_slice(points.0.as_flattened());
                out.push(u8::from(!tags.is_empty()));
                tags.iter().for_each(|t| out.extend_from_slice(&t.to_le_bytes()));
                // Padded: the labels' length would show the categories' to the broker.
                let start = out.len();
                out.extend(serde_json::to_vec(labels).expect("labels serialise"));
                let padded = (out.len() - start).max(MIN_LABELS_BYTES).next_power_of_two();
                out.resize(start + padded, b' ');
                out
            }
            PsiMessage::Size(size) => {
                let mut out = vec![4];
                out.extend_from_slice(&size.to_le_bytes());
                out
            }
            PsiMessage::Stripping {
                intersection,
                list,
                pad_to,
            } => {
                let padded = (*pad_to as usize).max(intersection.len()) * 32;
                let mut out = Vec::with_capacity(10 + 2 * padded);
                out.push(2);
                out.extend_from_slice(&(intersection.len() as u32).to_le_bytes());
                out.extend_from_slice(&(padded as u32 / 32).to_le_bytes());
                out.push(u8::from(!list.is_empty()));
                for points in [intersection, list] {
                    let start = out.len();
                    out.extend_from_slice(points.0.as_flattened());
                    out.resize(start + padded, 0);
                }
                out
            }
            PsiMessage::Result(value) => {
                let mut out = vec![3];
                out.extend(serde_json::to_vec(value).expect("JSON values serialise"));
                out.resize(out.len().max(MIN_RESULT_BYTES).next_power_of_two(), b' ');
                out
            }
        }
    }

    pub fn from_bytes(from: PartyIndex, bytes: &[u8]) -> Result<PsiMessage, ProtocolError> {
        let malformed = |reason: &str| ProtocolError::Malformed {
            from,
            reason: format!("PSI message: {reason}"),
        };
        fn json<T: serde::de::DeserializeOwned>(from: PartyIndex, bytes: &[u8]) -> Result<T, ProtocolError> {
            serde_json::from_slice(bytes).map_err(|e| ProtocolError::Malformed {
                from,
                reason: format!("PSI message: {e}"),
            })
        }
        let word = |rest: &[u8], i: usize| {
            rest.get(4 * i..4 * i + 4)
                .map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes")))
                .ok_or_else(|| malformed("truncated header"))
        };
        match bytes.split_first() {
            Some((1, rest)) => {
                let (origin, layers, count) = (word(rest, 0)?, word(rest, 1)?, word(rest, 2)? as usize);
                let end = 12 + count.checked_mul(32).ok_or_else(|| malformed("count"))?;
                let points = rest
                    .get(12..end)
                    .and_then(Points::from_bytes)
                    .ok_or_else(|| malformed("truncated points"))?;
                let (tags, labels) = match rest.get(end) {
                    Some(0) => (Vec::new(), &rest[end + 1..]),
                    Some(1) => {
                        let tags_end = end + 1 + count * 4;
                        let tags = rest
                            .get(end + 1..tags_end)
                            .ok_or_else(|| malformed("truncated tags"))?
                            .chunks_exact(4)
                            .map(|t| u32::from_le_bytes(t.try_into().expect("4 bytes")))
                            .collect();
                        (tags, &rest[tags_end..])
                    }
                    _ => return Err(malformed("bad tag flag")),
                };
                Ok(PsiMessage::Layered {
                    origin,
                    layers,
                    points,
                    tags,
                    labels: json(from, labels)?,
                })
            }
            Some((4, rest)) if rest.len() == 4 => Ok(PsiMessage::Size(word(rest, 0)?)),
            Some((2, rest)) => {
                let (count, pad_to) = (word(rest, 0)? as usize, word(rest, 1)? as usize);
                let padded = pad_to
                    .checked_mul(32)
                    .filter(|_| count <= pad_to)
                    .ok_or_else(|| malformed("count"))?;
                let has_list = *rest.get(8).ok_or_else(|| malformed("truncated header"))?;
                let body = &rest[9..];
                if has_list > 1 || body.len() != 2 * padded {
                    return Err(malformed("bad stripping list"));
                }
                let points = |at: usize| Points::from_bytes(&body[at..at + count * 32]).expect("32 bytes each");
                Ok(PsiMessage::Stripping {
                    intersection: points(0),
                    list: if has_list == 1 {
                        points(padded)
                    } else {
                        Points::default()
                    },
                    pad_to: pad_to as u32,
                })
            }
            Some((3, rest)) => Ok(PsiMessage::Result(json(from, rest)?)),
            _ => Err(malformed("unknown message type")),
        }
    }
}

/// Bytes of a point kept to recognise it later: a list kept this way costs half as much, and a
/// dishonest party cannot find a point of another list that shares 16 bytes with one of these.
const PREFIX: usize = 16;

/// The ring every list travels: party `o` encrypts its own list and sends it to `o+1`, which
/// adds its layer, shuffles and passes it on, until the list carries all n layers; then it goes
/// to party 0, which compares the n fully encrypted lists. A list therefore never returns to its
/// owner before it is complete, and when it does (only party 0's own, at party 0) it is in an
/// order set by the other parties' keys.
///
/// Guards against one dishonest party: every party announces its set size at the start, and a
/// list that differs from its origin's size is refused; each party takes each origin's list
/// once (and party 0 each complete list once); anything else is a protocol violation by its
/// sender. So no party can have a list re-encrypted twice, or grow one on its way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ring {
    pub key: Key,
    /// Every party's announced set size, once known.
    sizes: Vec<Option<u32>>,
    /// The origins whose list this party has taken.
    taken: Vec<bool>,
    /// Lists that arrived before their origin's size: (from, origin, layers, points).
    waiting: Vec<(PartyIndex, usize, usize, Points)>,
    /// At party 0: every party's fully encrypted list, once in.
    complete: Vec<Option<Points>>,
    /// The complete list this party made (the prefixes of its points, sorted), if asked to keep
    /// it: a party checks the intersection it is asked to strip against it.
    made: Option<Vec<[u8; PREFIX]>>,
}

impl Ring {
    /// `keep_made`: remember the complete list this party makes (SetIntersection's stripping
    /// checks it).
    pub fn new(parties: usize, keep_made: bool, rng: &mut dyn rand_core::RngCore) -> Ring {
        Ring {
            key: Key::random(rng),
            sizes: vec![None; parties],
            taken: vec![false; parties],
            waiting: Vec::new(),
            complete: vec![None; parties],
            made: keep_made.then(Vec::new),
        }
    }

    /// Encrypts and shuffles this party's own list, announces its size, and sends it on its way.
    pub fn start(&mut self, own: Vec<Point>, io: &mut Io<'_, PsiMessage>) -> Result<(), ProtocolError> {
        let (n, me) = (io.parties(), io.me());
        let mut own = own;
        shuffle(&mut own, me)?;
        self.sizes[me] = Some(own.len() as u32);
        for to in (0..n).filter(|&to| to != me && to != (me + 1) % n) {
            io.send(to, PsiMessage::Size(own.len() as u32));
        }
        self.forward(me, 1, Points(own), io);
        Ok(())
    }

    /// Every party's set size, once all are known.
    pub fn sizes(&self) -> Option<Vec<u32>> {
        self.sizes.iter().copied().collect()
    }

    fn forward(&mut self, origin: PartyIndex, layers: usize, points: Points, io: &mut Io<'_, PsiMessage>) {
        let n = io.parties();
        let message = |points| PsiMessage::Layered {
            origin: origin as u32,
            layers: layers as u32,
            points,
            tags: Vec::new(),
            labels: Vec::new(),
        };
        if layers < n {
            io.send((io.me() + 1) % n, message(points));
            return;
        }
        if let Some(made) = &mut self.made {
            *made = prefixes(&points.0);
        }
        if io.me() == 0 {
            self.complete[origin] = Some(points);
        } else {
            io.send(0, message(points));
        }
    }

    /// Takes a party's announced size.
    pub fn size(
        &mut self,
        from: PartyIndex,
        size: u32,
        io: &mut Io<'_, PsiMessage>,
    ) -> Result<Option<Vec<Points>>, ProtocolError> {
        let n = io.parties();
        if from == io.me() || (from + 1) % n == io.me() || self.sizes[from].is_some() {
            return Err(ProtocolError::Unexpected {
                from,
                what: "a set size out of turn".into(),
            });
        }
        if size as usize > MAX_ITEMS {
            return Err(violation(from, format!("a set of {size} items announced")));
        }
        self.sizes[from] = Some(size);
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(_, origin, _, _)| *origin == from);
        self.waiting = waiting;
        for (sender, origin, layers, points) in ready {
            self.take(sender, origin, layers, points, io)?;
        }
        Ok(self.all_complete())
    }

    /// Takes a list from the ring; returns every party's fully encrypted list (at party 0, once
    /// all are in).
    pub fn receive(
        &mut self,
        from: PartyIndex,
        origin: u32,
        layers: u32,
        points: Points,
        io: &mut Io<'_, PsiMessage>,
    ) -> Result<Option<Vec<Points>>, ProtocolError> {
        let (n, me) = (io.parties(), io.me());
        let (origin, layers) = (origin as usize, layers as usize);
        let unexpected = |what: String| ProtocolError::Unexpected { from, what };
        if origin >= n || layers == 0 || layers > n {
            return Err(unexpected(format!("a list of party {origin} with {layers} layers")));
        }
        let turn = if layers == n {
            me == 0 && from == (origin + n - 1) % n
        } else {
            from == (me + n - 1) % n && origin == (me + n - layers) % n
        };
        if !turn {
            return Err(unexpected(format!("party {origin}'s list with {layers} layers")));
        }
        let taken = if layers == n {
            self.complete[origin].is_some()
        } else {
            self.taken[origin]
        };
        if taken || self.waiting.iter().any(|w| (w.1, w.2) == (origin, layers)) {
            return Err(violation(
                from,
                format!("party {origin}'s list with {layers} layers a second time"),
            ));
        }
        if layers == 1 {
            // From its origin itself, the successor: the list is the announcement.
            self.sizes[origin] = Some(points.len() as u32);
        }
        if self.sizes[origin].is_none() {
            self.waiting.push((from, origin, layers, points));
            return Ok(None);
        }
        self.take(from, origin, layers, points, io)?;
        Ok(self.all_complete())
    }

    /// A list whose origin's size is known: checked against it, then stored (complete, at party
    /// 0) or re-encrypted, shuffled and passed on.
    fn take(
        &mut self,
        from: PartyIndex,
        origin: usize,
        layers: usize,
        mut points: Points,
        io: &mut Io<'_, PsiMessage>,
    ) -> Result<(), ProtocolError> {
        let announced = self.sizes[origin].expect("known") as usize;
        if points.len() != announced {
            return Err(violation(
                from,
                format!(
                    "party {origin}'s list holds {} items, {announced} were announced",
                    points.len()
                ),
            ));
        }
        if layers == io.parties() {
            self.complete[origin] = Some(points);
            return Ok(());
        }
        self.taken[origin] = true;
        reencrypt(&self.key, false, &mut points.0, from, io.stop())?;
        shuffle(&mut points.0, from)?;
        self.forward(origin, layers + 1, points, io);
        Ok(())
    }

    /// Every list, if all are complete; each is handed out once.
    pub fn all_complete(&mut self) -> Option<Vec<Points>> {
        if self.complete.iter().all(Option::is_some) && !self.complete.is_empty() {
            Some(std::mem::take(&mut self.complete).into_iter().flatten().collect())
        } else {
            None
        }
    }

    /// Whether every point is in the complete list this party made (kept with `keep_made`).
    pub fn made_holds(&self, points: &[Point]) -> bool {
        let made = self.made.as_deref().unwrap_or_default();
        points
            .iter()
            .all(|p| made.binary_search(&p[..PREFIX].try_into().expect("16 bytes")).is_ok())
    }
}

fn prefixes(points: &[Point]) -> Vec<[u8; PREFIX]> {
    let mut kept: Vec<[u8; PREFIX]> = points
        .iter()
        .map(|p| p[..PREFIX].try_into().expect("16 bytes"))
        .collect();
    kept.par_sort_unstable();
    kept
}

/// A message that breaks the protocol on purpose or not: the party at fault is named.
pub fn violation(from: PartyIndex, what: String) -> ProtocolError {
    ProtocolError::Unexpected { from, what }
}

/// The points present in every list (each sorted).
pub fn intersect(lists: &[Points]) -> Vec<Point> {
    let Some((first, rest)) = lists.split_first() else {
        return Vec::new();
    };
    first
        .0
        .par_iter()
        .filter(|p| rest.iter().all(|list| list.0.binary_search(p).is_ok()))
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::never;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn encryption_commutes_and_strips() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let (a, b) = (Key::random(&mut rng), Key::random(&mut rng));
        let items: Vec<String> = (0..2500).map(|i| canonical(&Value::from(i))).collect();
        let ctx = [3u8; 32];
        let plain = (hash_to_group(&ctx, items[2100].as_bytes()) * a.scalar()).compress();
        let encrypt = |key: &Key, ctx: &[u8; 32]| encrypt_items(key, ctx, &items, never()).unwrap();
        assert_eq!(encrypt(&a, &ctx)[2100], plain.to_bytes());
        let mut ab = encrypt(&a, &ctx);
        reencrypt(&b, false, &mut ab, 1, never()).unwrap();
        let mut ba = encrypt(&b, &ctx);
        reencrypt(&a, false, &mut ba, 0, never()).unwrap();
        assert_eq!(ab, ba);
        reencrypt(&b, true, &mut ab, 1, never()).unwrap();
        assert_eq!(ab, encrypt(&a, &ctx));
        assert_ne!(encrypt(&a, &[4u8; 32]), encrypt(&a, &ctx));
        let stopped = std::sync::atomic::AtomicBool::new(true);
        assert_eq!(encrypt_items(&a, &ctx, &items, &stopped), Err(ProtocolError::Stopped));
        assert_eq!(reencrypt(&b, false, &mut ab, 1, &stopped), Err(ProtocolError::Stopped));
    }

    #[test]
    fn messages_round_trip_compactly() {
        let message = PsiMessage::Layered {
            origin: 2,
            layers: 1,
            points: Points(vec![[9u8; 32]; 3]),
            tags: vec![0, 1, 0],
            labels: vec!["a".into(), "b".into()],
        };
        let bytes = message.to_bytes();
        assert_eq!(bytes.len(), 1 + 12 + 96 + 1 + 12 + 256, "labels padded to 256 bytes");
        assert_eq!(PsiMessage::from_bytes(0, &bytes).unwrap(), message);
        let strip = PsiMessage::Stripping {
            intersection: Points(vec![[1u8; 32]]),
            list: Points(vec![[2u8; 32]]),
            pad_to: 3,
        };
        assert_eq!(strip.to_bytes().len(), 1 + 9 + 2 * 3 * 32, "padded to the bound");
        assert_eq!(PsiMessage::from_bytes(0, &strip.to_bytes()).unwrap(), strip);
        let size = PsiMessage::Size(7);
        assert_eq!(PsiMessage::from_bytes(0, &size.to_bytes()).unwrap(), size);
        let result = PsiMessage::Result(serde_json::json!({"size_intersection": 12345}));
        assert_eq!(result.to_bytes().len(), 256);
        assert_eq!(PsiMessage::from_bytes(0, &result.to_bytes()).unwrap(), result);
        assert!(PsiMessage::from_bytes(0, &bytes[..40]).is_err());
    }

    #[test]
    fn a_set_is_the_intersection_of_its_lists() {
        let set = |v: Value| {
            read_set(&v)
                .iter()
                .map(|c| serde_json::from_str(c).unwrap())
                .collect::<Vec<Value>>()
        };
        let j = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        assert_eq!(
            set(j(r#"[["a","b","c"],["c","a","a"]]"#)),
            vec![j(r#""a""#), j(r#""c""#)]
        );
        assert_eq!(
            set(j(r#"[["b","a","b","d","e"],["d","b","x","e"],["b","d","d","c"]]"#)),
            vec![j(r#""b""#), j(r#""d""#)],
            "three lists, repeats, members at either end of the merge"
        );
        assert_eq!(set(j(r#"["apple","banana"]"#)), vec![j(r#""apple""#), j(r#""banana""#)]);
        assert_eq!(set(j("[]")), Vec::<Value>::new());
        assert_eq!(set(j("[[1, 2], [2, 1.0]]")), vec![j("2")]);
        assert!(check_set(&j(r#""a""#)).is_err());
        assert!(check_set(&j(r#"[["a"], []]"#)).is_ok());
    }
}

/// What tests of the PSI protocols share: what a party could compute itself from a guess.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::machine::Machine;
    use std::collections::HashSet;

    /// The secret scalar in a party's final machine state.
    pub fn key_of(machine: &Machine) -> Key {
        fn find(value: &Value) -> Option<Key> {
            match value {
                Value::Object(map) => map
                    .get("key")
                    .and_then(|k| serde_json::from_value(k.clone()).ok())
                    .or_else(|| map.values().find_map(find)),
                Value::Array(list) => list.iter().find_map(find),
                _ => None,
            }
        }
        find(&serde_json::to_value(machine).unwrap()).expect("a PSI machine holds its key")
    }

    /// Every point a party holding `key` can compute from any of `items`: `H(x)`, `k·H(x)` and
    /// `k⁻¹·H(x)`. A received point in this set links to an input; anything else needs another
    /// party's key.
    pub fn computable(key: &Key, context: &[u8; 32], items: &[Value]) -> HashSet<Point> {
        let (k, inverse) = (key.scalar(), key.scalar().invert());
        items
            .iter()
            .flat_map(|item| {
                let h = hash_to_group(context, canonical(item).as_bytes());
                [h, h * k, h * inverse].map(|p| p.compress().to_bytes())
            })
            .collect()
    }

    /// Every point in a message, and whether a list in it is sorted (shuffled).
    pub fn points_of(message: &PsiMessage) -> (Vec<Point>, bool) {
        match message {
            PsiMessage::Layered { points, .. } => (points.0.clone(), points.0.windows(2).all(|w| w[0] < w[1])),
            PsiMessage::Stripping { intersection, list, .. } => {
                let sorted = |p: &Points| p.0.windows(2).all(|w| w[0] < w[1]);
                let points = intersection.0.iter().chain(&list.0).copied().collect();
                (points, sorted(intersection) && sorted(list))
            }
            PsiMessage::Result(_) | PsiMessage::Size(_) => (Vec::new(), true),
        }
    }
}
