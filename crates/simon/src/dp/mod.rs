//! Differential privacy of opened sums: exact samplers of integer noise ([`samplers`]) and the
//! `dp` parameter with its calibration ([`mechanism`]). A protocol that supports `dp` adds one
//! party's noise share, drawn here, to each coordinate of its encoded contribution *before* the
//! masked sum ([`crate::sum::additive_sum`]), so that the opened total carries the noise of
//! every party and no party ever sees an un-noised total. Wrap-around in Z_2^k is harmless: the
//! noise is an integer residue like the rest of the sum, and the total is read back signed.
//! What each protocol's sensitivity is, and what its guarantee means, is in docs/protocols.md.

pub mod clipping;
pub mod mechanism;
pub mod samplers;

pub use mechanism::{DpParameters, Mechanism, Sensitivity};

#[cfg(test)]
mod distribution_tests;
#[cfg(test)]
mod sum_tests;
#[cfg(test)]
mod univariate_tests;
