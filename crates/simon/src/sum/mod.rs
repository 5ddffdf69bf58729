//! Secure sums: the family every other sum-based protocol stands on. A party's vector of ring
//! elements is hidden by the pairwise masks of [`crate::masks`], which cancel in the total, so
//! what every party learns is the total and nothing else; no shares are exchanged, and a sum
//! travels all-to-all below five parties or through a rotating aggregator from five on.
//!
//! - [`additive_sum`]: the building block, one masked sum of a vector in Z_2^64, Z_2^256 or the
//!   wide ring;
//! - [`secure_sum`]: the SecureSum microprotocol (the reference's fixed-point total and count);
//! - [`rounds`]: sums one after another inside a protocol, each on a vector chosen once the
//!   previous total is known; the order statistics and the statistics run on it;
//! - [`total`]: one masked sum of the parties' record counts before a protocol starts, where
//!   the definition sets `min_total_samples`.
//!
//! The masks themselves stay at the crate root, not here: every protocol's [`crate::Io`] carries
//! them and the node derives their seeds, so placing them in this folder would make
//! [`crate::protocol`] import from a family that imports it back.

pub mod additive_sum;
pub mod rounds;
pub mod secure_sum;
pub mod total;
