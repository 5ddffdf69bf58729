//! Statistics: summaries of all parties' data, numerically stable whatever the data and in a
//! number of sum rounds that does not depend on it ([`crate::sum::rounds`]). Numbers are summed
//! exactly in the wide ring ([`reals`]), with no fixed-point scale to agree beforehand, and
//! spreads come from centred power sums ([`moments`]) rather than raw ones; categories are
//! counted cell by cell ([`categorical`]). What every party learns in common: the output and
//! the sums it determines (count, totals, centred sums or cell counts), and, where categories
//! are exchanged, the set of categories each other party has.
//!
//! - [`reals`], [`moments`], [`categorical`]: the building blocks (exact sums of doubles,
//!   centred moments, categorical counts);
//! - [`univariate`]: the StatisticsUnivariate microprotocol (also on
//!   [`crate::order::minimum_maximum`] for the extremes);
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
pub mod reals;
pub mod univariate;
