//! Order statistics: values found by bisection over the parties' numbers, never by sorting them
//! in one place. Every finite double maps to a 64-bit key that orders as the double does
//! ([`doubles`]); a protocol narrows an interval of keys ([`bisection`]) by testing 2^b − 1
//! thresholds a round, each round one sum in Z_2^64 run through [`crate::sum::rounds`]. What
//! every party learns in common: the number of values and, per threshold tested, only what the
//! search needs (an OR for the extremes, a count of values ≤ t for a rank), in about 64 / b
//! rounds whatever the data.
//!
//! - [`doubles`]: the order-preserving map from doubles to keys and the reading of JSON numbers
//!   for it (also the JSON type names of input errors);
//! - [`bisection`]: the interval arithmetic of the search;
//! - [`rank_search`]: the building block that finds the values of given ranks by counts;
//! - [`minimum_maximum`]: the MinimumMaximum microprotocol, by ORs;
//! - [`kth_element`], [`secure_median`]: the KthElement and SecureMedian microprotocols, on
//!   [`rank_search`].

pub mod bisection;
pub mod doubles;
pub mod kth_element;
pub mod minimum_maximum;
pub mod rank_search;
pub mod secure_median;
