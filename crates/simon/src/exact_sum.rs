//! Exact sums of doubles: every finite double is an integer multiple of 2^−1074 below 2^1024, so
//! scaled by 2^1100 it is an integer of at most 2124 bits, and the wide ring Z_2^2304 holds the sum
//! of up to 2^179 of them without wrapping. The statistics round such a sum to public grids
//! (`statistics::reals`); SecureSum's exact mode adds it up as it is. This module owns the
//! encoding only: no shares, no protocols.

use crate::fixed_point::decompose;
use crate::z2k::ZWide;
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::One;
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
        let (mantissa, power, negative) = decompose(x);
        if mantissa != 0 {
            let shift = (power + FRACTION_BITS as i32) as u32;
            self.0.add_shifted(mantissa, shift, negative);
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

    /// The sum, exactly.
    pub fn value(self) -> BigRational {
        BigRational::new(self.0.to_signed_bigint(), BigInt::one() << FRACTION_BITS as usize)
    }
}
