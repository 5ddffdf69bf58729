//! fsc-simon: the pure protocol engine of fsc.
//!
//! Everything here is sans-IO: microprotocols are state machines over serialisable state that
//! take their input, their messages and an injected RNG, and return messages and results. No
//! network, no clock, no files. The node crate persists and transports what this crate produces.
//!
//! - [`z2k`]: the ring Z_2^256 in which additive shares are uniform;
//! - [`fixed_point`]: the reference's decimal encoding of numbers, reproduced exactly;
//! - [`protocol`]: the [`Microprotocol`] trait every protocol implements;
//! - [`additive_sum`], [`secure_sum`]: the microprotocols;
//! - [`psi`]: the DH-PSI building block (Ristretto255, compact lists, the ring);
//!   [`set_intersection`], [`contingency_vertical`]: the microprotocols built on it;
//! - [`machine`]: protocols by name, as one serialisable [`Machine`] a runtime can drive;
//! - [`simulate`]: all parties of a computation in one process, for tests.

pub mod additive_sum;
pub mod contingency_vertical;
pub mod fixed_point;
pub mod machine;
pub mod protocol;
pub mod psi;
pub mod secure_sum;
pub mod set_intersection;
pub mod simulate;
pub mod z2k;

pub use machine::{EngineError, Machine, Spec, Step};
pub use protocol::{Io, Microprotocol, PartyIndex, Progress, ProtocolError};
