//! Private set intersection: protocols over sets of JSON items by Diffie-Hellman PSI on
//! Ristretto255 ([`dh`]), with no masks and no sums. Each party holds one secret scalar per
//! computation; items are hashed to the group under the computation's context and encrypted
//! with every party's key in turn, so equal items meet as equal points and no party can link a
//! point to an item without the others' keys. What every party learns in common: the result
//! and the other parties' list lengths (set sizes).
//!
//! - [`dh`]: the building block (the group arithmetic, the compact point lists, the wire form of
//!   PSI messages, the reading of a party's set, and the ring every list travels);
//! - [`set_intersection`]: the SetIntersection and SetIntersectionSize microprotocols, around
//!   the ring;
//! - [`contingency_vertical`]: the StatisticsContingencyVertical microprotocol, one PSI over the
//!   ids of two parties in which every id carries its category.

pub mod contingency_vertical;
pub mod dh;
pub mod set_intersection;

#[cfg(test)]
mod dishonest;
