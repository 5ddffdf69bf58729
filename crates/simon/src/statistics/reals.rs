//! Exact sums of doubles on public grids: a party adds its values exactly ([`ExactSum`], no
//! rounding however many there are), and rounds its total once, to a public [`Grid`], before the
//! parties add their contributions with the additive sum in the wide ring.
//!
//! The grid is what keeps an opened total from saying more than the statistics drawn from it
//! (issue 20.3): every party's contribution is a multiple of it, so the total carries no digit
//! finer than the grid, and in particular no low digits of a small party's values under a large
//! party's. Each protocol derives its grids from public facts (the count, the extremes, the
//! number of parties), as fine as its stated accuracy needs and no finer. This module owns the
//! encoding only.

pub use crate::exact_sum::{ExactSum, FRACTION_BITS};
use crate::fixed_point::ratio_to_f64;
use crate::statistics::exact::mantissa_times_power_of_two;
use crate::z2k::ZWide;
use num_bigint::BigInt;
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed};
use serde::{Deserialize, Serialize};

/// A public grid 2^exponent. A contribution becomes the integer nearest to it in units of the
/// grid (ties upward); the total of the integers, times the grid, is the opened total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grid(pub i64);

impl Grid {
    /// The grid `bits` binary places below 2^`exponent`, less ⌈log2 parties⌉ more, so that the
    /// parties' roundings together stay within 2^(exponent − bits − 1).
    pub fn below(exponent: i64, bits: i64, parties: usize) -> Grid {
        Grid(exponent - bits - i64::from(parties.next_power_of_two().trailing_zeros()))
    }

    pub fn encode(self, value: &BigRational) -> ZWide {
        let scaled = value * mantissa_times_power_of_two(BigInt::one(), -self.0);
        let twice: BigInt = scaled.numer() * BigInt::from(2) + scaled.denom();
        ZWide::from_bigint(&twice.div_floor(&(scaled.denom() * BigInt::from(2))))
    }

    pub fn decode(self, total: ZWide) -> BigRational {
        mantissa_times_power_of_two(total.to_signed_bigint(), self.0)
    }
}

/// The largest k with 2^k ≤ r, for r > 0.
pub fn floor_log2(r: &BigRational) -> i64 {
    debug_assert!(r.is_positive());
    let k = r.numer().bits() as i64 - r.denom().bits() as i64;
    if mantissa_times_power_of_two(BigInt::one(), k) <= *r {
        k
    } else {
        k - 1
    }
}

/// The smallest k with r ≤ 2^k, for r > 0.
pub fn ceil_log2(r: &BigRational) -> i64 {
    let k = floor_log2(r);
    if mantissa_times_power_of_two(BigInt::one(), k) == *r {
        k
    } else {
        k + 1
    }
}

/// The double nearest to a decoded total divided by `divisor` (a count, or 1).
pub fn decode(total: ZWide, divisor: u64) -> f64 {
    let denominator = BigInt::from(divisor) << FRACTION_BITS;
    ratio_to_f64(&total.to_signed_bigint(), &denominator)
}

/// The exact encoding of one double.
pub fn encode(x: f64) -> ZWide {
    ExactSum::of([x]).encoded()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_double_round_trips() {
        for x in [
            0.0,
            -0.0,
            1.0,
            -2.5,
            0.1,
            f64::MAX,
            -f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            1e300,
            123456789.12345679,
        ] {
            assert_eq!(decode(encode(x), 1), x, "{x:e}");
        }
    }

    #[test]
    fn sums_are_exact_where_doubles_round() {
        // 1e16 + 1 + 1 in doubles is 1e16 (each 1 is lost); exactly it is 1e16 + 2.
        let sum = ExactSum::of([1e16, 1.0, 1.0]);
        assert_eq!(decode(sum.encoded(), 1), 1e16 + 2.0);
        let sum = ExactSum::of([f64::MAX, f64::MAX, -f64::MAX, 5e-324]);
        assert_eq!(decode(sum.encoded(), 1), f64::MAX);
        let tiny = ExactSum::of([5e-324; 3]);
        assert_eq!(decode(tiny.encoded(), 3), 5e-324);
        let mean = ExactSum::of([0.1, 0.2, 0.3]);
        assert_eq!(decode(mean.encoded(), 3), 0.2);
    }

    #[test]
    fn grids_round_to_nearest_and_decode_exactly() {
        let grid = Grid(-2);
        let quarter = |n: i64| mantissa_times_power_of_two(n.into(), -2);
        for (value, units) in [(0.3, 1), (0.375, 2), (-0.3, -1), (-0.375, -1), (1e-300, 0), (5.0, 20)] {
            let total = grid.encode(&crate::statistics::exact::exact(value));
            assert_eq!(grid.decode(total), quarter(units), "{value}");
        }
        assert_eq!(Grid::below(10, 56, 3), Grid(-48));
        assert_eq!(Grid::below(10, 56, 4), Grid(-48));
        assert_eq!(Grid::below(10, 56, 5), Grid(-49));
        let r = |x: f64| crate::statistics::exact::exact(x);
        assert_eq!((floor_log2(&r(3.0)), ceil_log2(&r(3.0))), (1, 2));
        assert_eq!((floor_log2(&r(0.25)), ceil_log2(&r(0.25))), (-2, -2));
        assert_eq!((floor_log2(&r(5e-324)), ceil_log2(&r(5e-324))), (-1074, -1074));
    }
}
