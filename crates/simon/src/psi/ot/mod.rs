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
use std::sync::Arc;

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
/// memory, each time the machine was loaded or cloned (a node clones it at every step). Stored
/// apart from the state ([`ItemsApart`]) in [`Items::to_bytes`]'s form.
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

    /// The store's form: the count (u64 LE), each item's length (u32 LE), then the text.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(8 + 4 * self.len() + self.text.len());
        bytes.extend_from_slice(&(self.len() as u64).to_le_bytes());
        let mut start = 0;
        for &end in &self.ends {
            bytes.extend_from_slice(&((end - start) as u32).to_le_bytes());
            start = end;
        }
        bytes.extend_from_slice(self.text.as_bytes());
        bytes
    }

    /// Reads [`Items::to_bytes`]'s form, if `bytes` are one.
    pub fn from_bytes(bytes: &[u8]) -> Option<Items> {
        let count = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
        let lengths = bytes.get(8..8 + count.checked_mul(4)?)?;
        let text = std::str::from_utf8(&bytes[8 + lengths.len()..]).ok()?;
        let mut ends = Vec::with_capacity(count);
        let mut end = 0usize;
        for length in lengths.chunks_exact(4) {
            end = end.checked_add(u32::from_le_bytes(length.try_into().expect("4 bytes")) as usize)?;
            if !text.is_char_boundary(end) {
                return None;
            }
            ends.push(end);
        }
        (end == text.len()).then(|| Items {
            text: text.to_string(),
            ends,
        })
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

/// Reads the list of strings that states stored by earlier versions hold inline.
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

/// A party's items in its machine, shared (the runtime clones a machine at every long step) and
/// left out of its serde form: that form holds only their count, and a store keeps the items
/// apart, written once ([`crate::Machine::bulk`]), where every step's state held them all (a
/// third of a GB at 2^24 items, written again after each step). States stored by earlier
/// versions hold the list inline, and load with it.
#[derive(Debug, Clone, Default)]
pub struct ItemsApart {
    items: Arc<Items>,
    /// How many items there are: more than `items` holds while a loaded state waits for them.
    count: usize,
}

impl ItemsApart {
    pub fn new(items: Items) -> ItemsApart {
        ItemsApart {
            count: items.len(),
            items: Arc::new(items),
        }
    }

    /// The items, if they are all here (not waiting to be given back after a load).
    pub fn get(&self) -> Option<&Items> {
        (self.items.len() == self.count).then_some(&*self.items)
    }

    /// Whether the items must be given back ([`ItemsApart::restore`]) before a step can use them.
    pub fn missing(&self) -> bool {
        self.get().is_none()
    }

    /// Gives the items of a loaded state back, from [`Items::to_bytes`]'s form.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let items = Items::from_bytes(bytes).ok_or("the stored items are not in their form")?;
        if items.len() != self.count {
            return Err(format!("{} items stored for a state of {}", items.len(), self.count));
        }
        self.items = Arc::new(items);
        Ok(())
    }
}

impl Serialize for ItemsApart {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.count as u64)
    }
}

impl<'de> Deserialize<'de> for ItemsApart {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ItemsApart, D::Error> {
        deserializer.deserialize_any(ApartVisitor)
    }
}

struct ApartVisitor;

impl<'de> Visitor<'de> for ApartVisitor {
    type Value = ItemsApart;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a count of items, or a list of strings")
    }

    fn visit_u64<E: serde::de::Error>(self, count: u64) -> Result<ItemsApart, E> {
        let count = usize::try_from(count).map_err(E::custom)?;
        Ok(ItemsApart {
            items: Arc::default(),
            count,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ItemsApart, A::Error> {
        ItemsVisitor.visit_seq(seq).map(ItemsApart::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(list: &[&str]) -> Items {
        Items::from(list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn items_read_back_from_their_bytes_and_nothing_else_does() {
        for list in [&[][..], &["\"a\""], &["\"\"", "\"ü名\"", "[1,{\"k\":null}]", "12345"]] {
            let items = items(list);
            assert_eq!(Items::from_bytes(&items.to_bytes()), Some(items));
        }
        let bytes = items(&["\"ü\"", "1"]).to_bytes();
        assert_eq!(Items::from_bytes(&bytes[..bytes.len() - 1]), None, "a short text");
        assert_eq!(
            Items::from_bytes(&[bytes.as_slice(), b"x"].concat()),
            None,
            "a long text"
        );
        assert_eq!(Items::from_bytes(&bytes[..7]), None, "no count");
        let mut split = bytes.clone();
        split[8] = 2; // the first item ends inside the two bytes of "ü"
        split[12] = 3;
        assert_eq!(Items::from_bytes(&split), None, "an item that ends inside a character");
        let mut huge = bytes;
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(Items::from_bytes(&huge), None, "a count beyond the bytes");
    }

    #[test]
    fn items_apart_persist_as_their_count_and_wait_for_the_items() {
        let apart = ItemsApart::new(items(&["\"a\"", "\"b\""]));
        let json = serde_json::to_string(&apart).unwrap();
        assert_eq!(json, "2");
        let mut loaded: ItemsApart = serde_json::from_str(&json).unwrap();
        assert!(loaded.missing());
        assert_eq!(loaded.get(), None);
        assert!(loaded.restore(&items(&["\"a\""]).to_bytes()).is_err(), "another count");
        assert!(loaded.restore(b"not items").is_err());
        loaded.restore(&apart.get().unwrap().to_bytes()).unwrap();
        assert_eq!(loaded.get(), apart.get());

        // As states stored before held them: inline, whole.
        let inline: ItemsApart = serde_json::from_str(r#"["\"a\"","\"b\""]"#).unwrap();
        assert!(!inline.missing());
        assert_eq!(inline.get(), apart.get());
        let none: ItemsApart = serde_json::from_str("0").unwrap();
        assert!(!none.missing());
    }
}
