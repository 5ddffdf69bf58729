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
use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
