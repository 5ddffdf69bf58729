//! Statistics: summaries of all parties' data, within one ulp of the exact values whatever the
//! data and in a number of sum rounds that does not depend on it ([`crate::sum::rounds`]).
//! Numbers are summed in the wide ring, each party's total rounded to a public grid ([`reals`]),
//! spreads come from centred power sums of double-double summaries ([`moments`], [`dd`]) rather
//! than raw ones, and every statistic is computed exactly from the opened totals and rounded
//! once ([`exact`]); categories are counted cell by cell ([`categorical`]). What every party
//! learns in common: the output and the opened totals (count, sums and centred sums on their
//! grids, or cell counts), and, where categories are exchanged, the set of categories each
//! other party has.
//!
//! - [`reals`], [`dd`], [`exact`], [`moments`], [`categorical`]: the building blocks (exact sums
//!   on public grids, double-double arithmetic, exact rationals, centred moments, categorical
//!   counts);
//! - [`univariate`]: the StatisticsUnivariate microprotocol (also on
//!   [`crate::order::minimum_maximum`] for the extremes); [`noisy_univariate`]: the same with
//!   `dp`, a noisy count, sum and sum of squares only;
//! - [`bivariate`]: the StatisticsBivariate microprotocol;
//! - [`frequency`], [`contingency`]: the StatisticsFrequency and StatisticsContingency
//!   microprotocols, on [`categorical`].

pub mod bivariate;
pub mod categorical;
pub mod contingency;
pub mod dd;
pub mod exact;
pub mod frequency;
pub mod moments;
pub mod noisy_univariate;
pub mod reals;
pub mod univariate;
