//! Private set intersection: protocols over sets of JSON items by Diffie-Hellman PSI on
//! Ristretto255 ([`dh`]), and SetIntersection between two parties also by OPRF-based PSI from
//! oblivious transfer ([`ot`]), with no masks and no sums. Each party holds one secret scalar per
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
//!   ids of two parties in which every id carries its category;
//! - [`ot`]: two-party SetIntersection by the KKRT protocol (base OTs, OT extension, cuckoo
//!   hashing), the default between two parties ([`SetIntersectionParameters`]).

pub mod contingency_vertical;
pub mod dh;
pub mod ot;
pub mod set_intersection;

use crate::protocol::{PartyIndex, ProtocolError};
use serde::{Deserialize, Serialize};

/// The compact binary form of PSI messages (their lists are too long for JSON).
pub trait Wire: Sized {
    fn to_bytes(&self) -> Vec<u8>;
    fn from_bytes(from: PartyIndex, bytes: &[u8]) -> Result<Self, ProtocolError>;
}

impl Wire for dh::PsiMessage {
    fn to_bytes(&self) -> Vec<u8> {
        dh::PsiMessage::to_bytes(self)
    }

    fn from_bytes(from: PartyIndex, bytes: &[u8]) -> Result<Self, ProtocolError> {
        dh::PsiMessage::from_bytes(from, bytes)
    }
}

/// How SetIntersection runs: the Diffie-Hellman ring (any number of parties) or OPRF-based PSI
/// from oblivious transfer (two parties, about ten times faster at 2^20 items in fsc-bench).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Dh,
    Ot,
}

/// SetIntersection's parameters: `psi`, the method, defaults to `ot` between two parties and
/// `dh` among more (OT PSI is a two-party protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetIntersectionParameters {
    #[serde(default)]
    pub psi: Option<Method>,
}

impl SetIntersectionParameters {
    /// The method filled in, or why it cannot run among `parties`.
    pub fn validate(self, parties: usize) -> Result<SetIntersectionParameters, String> {
        let default = if parties == 2 { Method::Ot } else { Method::Dh };
        match self.psi.unwrap_or(default) {
            Method::Ot if parties != 2 => Err(format!(
                "psi = \"ot\" is a two-party protocol, got {parties} parties (use \"dh\")"
            )),
            method => Ok(SetIntersectionParameters { psi: Some(method) }),
        }
    }
}

#[cfg(test)]
mod dishonest;
