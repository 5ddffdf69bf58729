//! Two-party PSI from oblivious transfer (KKRT): SetIntersection between two parties with
//! symmetric cryptography per item (fixed-key AES, SHA-256) instead of curve operations.
//!
//! - [`base`]: 512 Chou–Orlandi base OTs on Ristretto255;
//! - [`extension`]: the KKRT OPRF, IKNP OT extension with a 512-bit pseudorandom code;
//! - [`cuckoo`]: items to values, values to bins, the receiver's cuckoo table and its size;
//! - [`intersection`]: the microprotocol, its messages and their wire form.

pub mod base;
pub mod cuckoo;
pub mod extension;
pub mod intersection;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The most items a party may put into an OT PSI. The largest message is the receiver's matrix,
/// about 85 bytes per item of the smaller set (1.32 bins an item, 64 bytes a bin), then the
/// sender's outputs, 3 × 11 or 12 bytes per item of the larger: a node's default budget for a
/// peer's pending chunks (256 MiB) holds 2^21 items a side; 2^24 needs about 1.5 GiB.
pub const MAX_ITEMS: usize = 1 << 24;

/// Bytes kept in persisted state and in messages' serde form as base64 (JSON arrays of
/// numbers would be four times as long).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&BASE64.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        let text = String::deserialize(deserializer)?;
        BASE64.decode(text).map(Bytes).map_err(serde::de::Error::custom)
    }
}

/// A party's items, the canonical JSON of each (sorted, as [`crate::psi::dh::read_set`] gives
/// them), in one buffer: a million strings of their own took a million allocations, and fresh
/// memory, each time the machine was loaded or cloned (a node clones it at every step). Serde
/// form: the list of the strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Items {
    text: String,
    /// Where each item ends in `text`.
    ends: Vec<usize>,
}

impl Items {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Item `i`.
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The index of `item`, if the items (sorted) hold it.
    pub fn binary_search(&self, item: &str) -> Result<usize, usize> {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let middle = low + (high - low) / 2;
            match self.get(middle).cmp(item) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Ok(middle),
            }
        }
        Err(low)
    }

    fn push(&mut self, item: &str) {
        self.text.push_str(item);
        self.ends.push(self.text.len());
    }
}

impl From<Vec<String>> for Items {
    fn from(strings: Vec<String>) -> Items {
        let mut items = Items {
            text: String::with_capacity(strings.iter().map(String::len).sum()),
            ends: Vec::with_capacity(strings.len()),
        };
        strings.iter().for_each(|s| items.push(s));
        items
    }
}

impl Serialize for Items {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Items, D::Error> {
        deserializer.deserialize_seq(ItemsVisitor)
    }
}

struct ItemsVisitor;

impl<'de> Visitor<'de> for ItemsVisitor {
    type Value = Items;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items, A::Error> {
        let mut items = Items::default();
        while seq.next_element_seed(Append(&mut items))?.is_some() {}
        Ok(items)
    }
}

/// Reads one string of a list straight into the buffer (no string of its own).
struct Append<'a>(&'a mut Items);

impl<'de> DeserializeSeed<'de> for Append<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Append<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, item: &str) -> Result<(), E> {
        self.0.push(item);
        Ok(())
    }
}
