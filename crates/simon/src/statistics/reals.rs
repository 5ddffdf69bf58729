//! Exact sums of doubles: every finite double is an integer multiple of 2^−1074 below 2^1024, so
//! scaled by 2^1100 it is an integer of at most 2124 bits, and the wide ring Z_2^2304 holds the sum
//! of up to 2^179 of them without wrapping. A party adds its values here exactly (no rounding
//! however many there are), the parties add their totals with the additive sum in the wide ring,
//! and the total is rounded once, correctly, when decoded.
//!
//! Nothing about magnitudes is revealed or agreed beforehand, unlike a fixed-point scale: that
//! is why statistics use this encoding. This module owns the encoding only.

use crate::fixed_point::ratio_to_f64;
use crate::z2k::ZWide;
use num_bigint::BigInt;
use serde::{Deserialize, Serialize};

/// The scale of the encoding: a double x is the integer x · 2^FRACTION_BITS.
pub const FRACTION_BITS: u32 = 1100;

/// An exact running sum of doubles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ExactSum(ZWide);

impl ExactSum {
    /// Adds a finite double exactly. The caller rejects non-finite values before.
    pub fn add(&mut self, x: f64) {
        debug_assert!(x.is_finite(), "only finite doubles are summed");
        let bits = x.to_bits();
        let exponent = ((bits >> 52) & 0x7ff) as i32;
        let fraction = bits & ((1 << 52) - 1);
        // x = mantissa · 2^(power), power ≥ −1074.
        let (mantissa, power) = if exponent == 0 {
            (fraction, -1074)
        } else {
            (fraction | (1 << 52), exponent - 1075)
        };
        if mantissa != 0 {
            let shift = (power + FRACTION_BITS as i32) as u32;
            self.0.add_shifted(mantissa, shift, bits >> 63 == 1);
        }
    }

    pub fn of(values: impl IntoIterator<Item = f64>) -> ExactSum {
        let mut sum = ExactSum::default();
        values.into_iter().for_each(|x| sum.add(x));
        sum
    }

    pub fn encoded(self) -> ZWide {
        self.0
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
}
