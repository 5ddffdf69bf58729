//! fsc-simon: the pure protocol engine of fsc.
//!
//! Everything here is sans-IO: microprotocols are state machines over serialisable state that
//! take their input, their messages and an injected RNG, and return messages and results. No
//! network, no clock, no files. The node crate persists and transports what this crate produces.
//!
//! At the top, what every protocol shares:
//! - [`z2k`]: the rings Z_2^64, Z_2^256 and Z_2^2304 in which masked values are uniform;
//! - [`fixed_point`]: the reference's decimal encoding of numbers, reproduced exactly;
//! - [`exact_sum`]: exact sums of doubles, as integers in Z_2^2304;
//! - [`protocol`]: the [`Microprotocol`] trait every protocol implements, and its [`Io`];
//! - [`masks`]: the pairwise masks that hide a party's input in a sum; at the top rather than in
//!   [`sum`] because every [`Io`] carries them and the node derives their seeds;
//! - [`input`]: a party's input, JSON or a column of doubles read without a JSON value each;
//! - [`records`]: what a record of each protocol's input is (what record minimums count);
//! - [`machine`]: protocols by name, as one serialisable [`Machine`] a runtime can drive;
//! - [`simulate`]: all parties of a computation in one process, for tests.
//!
//! Then the protocol families, one folder each, whose `mod.rs` says what its protocols share:
//! - [`sum`]: the masked additive sum, SecureSum, and sums in sequence (rounds);
//! - [`order`]: bisection over the order-preserving keys of doubles: MinimumMaximum,
//!   KthElement, SecureMedian;
//! - [`statistics`]: sums of doubles on public grids, centred moments and categorical counts:
//!   StatisticsUnivariate, StatisticsBivariate, StatisticsFrequency, StatisticsContingency;
//! - [`psi`]: the DH-PSI building block on Ristretto255: SetIntersection, SetIntersectionSize,
//!   StatisticsContingencyVertical;
//! - [`matrix`]: fixed-point matrices and the helper-assisted product (the original's
//!   helper-less product opt-in): SecureMatrixMultiplication, StatisticsRegressionOLSVertical.
//!
//! Families import one another in one direction only: [`order`] runs its rounds on [`sum`];
//! [`statistics`] on [`sum`] and [`order`] (the extremes, the reading of numbers); [`psi`] and
//! [`matrix`] only name JSON types in input errors with [`order::doubles::kind`], and [`psi`]
//! names its table's rows and columns by [`statistics::categorical`]'s rule. None imports back.

pub mod dp;
pub mod exact_sum;
pub mod fixed_point;
pub mod input;
pub mod machine;
pub mod masks;
pub mod matrix;
pub mod order;
pub mod protocol;
pub mod psi;
pub mod records;
pub mod simulate;
pub mod statistics;
pub mod sum;
pub mod z2k;

pub use input::Input;
pub use machine::{EngineError, Machine, Spec, Step};
pub use masks::Masks;
pub use protocol::{Io, Limits, Microprotocol, PartyIndex, Progress, ProtocolError};
