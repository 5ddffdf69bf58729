//! fsc-simon: the pure protocol engine of fsc.
//!
//! Everything here is sans-IO: microprotocols are state machines over serialisable state that
//! take their input, their messages and an injected RNG, and return messages and results. No
//! network, no clock, no files. The node crate persists and transports what this crate produces.
//!
//! - [`z2k`]: the rings Z_2^64, Z_2^256 and Z_2^2304 in which masked values are uniform;
//! - [`fixed_point`]: the reference's decimal encoding of numbers, reproduced exactly;
//! - [`protocol`]: the [`Microprotocol`] trait every protocol implements;
//! - [`masks`], [`additive_sum`], [`secure_sum`]: pairwise masks, the secure sum built on
//!   them, and the first microprotocol;
//! - [`rounds`], [`bisection`], [`order`], [`rank_search`], [`reals`], [`moments`],
//!   [`categorical`]: sums in sequence, bisection over doubles, exact sums of doubles, centred
//!   moments, categorical counts; [`minimum_maximum`], [`kth_element`], [`secure_median`],
//!   [`statistics_univariate`], [`statistics_bivariate`], [`statistics_frequency`] and
//!   [`statistics_contingency`] build on them;
//! - [`matrix`], [`matrix_product`], [`least_squares`]: fixed-point matrices, the helper-assisted
//!   product, local least squares, the original's helper-less product [`projected_product`]
//!   (opt-in); [`secure_matrix_multiplication`] and
//!   [`regression_ols_vertical`] build on them;
//! - [`psi`]: the DH-PSI building block (Ristretto255, compact lists, the ring);
//!   [`set_intersection`], [`contingency_vertical`]: the microprotocols built on it;
//! - [`machine`]: protocols by name, as one serialisable [`Machine`] a runtime can drive;
//! - [`simulate`]: all parties of a computation in one process, for tests.

pub mod additive_sum;
pub mod bisection;
pub mod categorical;
pub mod contingency_vertical;
pub mod fixed_point;
pub mod kth_element;
pub mod least_squares;
pub mod machine;
pub mod masks;
pub mod matrix;
pub mod matrix_product;
pub mod minimum_maximum;
pub mod moments;
pub mod order;
pub mod projected_product;
pub mod protocol;
pub mod psi;
pub mod rank_search;
pub mod reals;
pub mod regression_ols_vertical;
pub mod rounds;
pub mod secure_matrix_multiplication;
pub mod secure_median;
pub mod secure_sum;
pub mod set_intersection;
pub mod simulate;
pub mod statistics_bivariate;
pub mod statistics_contingency;
pub mod statistics_frequency;
pub mod statistics_univariate;
pub mod z2k;

pub use machine::{EngineError, Machine, Spec, Step};
pub use masks::Masks;
pub use protocol::{Io, Microprotocol, PartyIndex, Progress, ProtocolError};
