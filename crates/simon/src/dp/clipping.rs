//! Clipped sums with noise: the building block of the protocols whose `dp` sums values rather
//! than counts them (SecureSum, StatisticsUnivariate).
//!
//! Each value is clipped to the declared `dp.bounds` [lo, hi] and put on the grid
//! 10^−digits_after by itself (exact rationals, nearest, ties away from zero); a party's slots
//! are the exact sums Σ grid(x), the count n and, where asked for, Σ grid(x²) (the square of the
//! clipped value, on the same grid). Rounding is monotone and per value, so adding or removing
//! one record moves Σ grid(x) by at most max(|grid(lo)|, |grid(hi)|) units, n by 1 and
//! Σ grid(x²) by at most grid(max(lo², hi²)) units: the sensitivities, exactly, in the units the
//! sums run in, whatever the other records are. Each slot gets a noise share calibrated to its
//! sensitivity and an even share of the budget (basic composition: ε/k or ρ/k for k slots, which
//! add up exactly to the request), drawn from the node's CSPRNG before the masked sum.

use crate::dp::{DpParameters, Mechanism, Sensitivity};
use crate::fixed_point::{self, EncodingError, PyNumber};
use crate::protocol::ProtocolError;
use crate::z2k::{Z256, Zk};
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{Signed, ToPrimitive, Zero};
use rand_core::RngCore;
use serde_json::{Value, json};

/// How a protocol clips and noises its values: the validated `dp` (bounds included), the grid,
/// and whether the sum of squares is a slot.
#[derive(Debug, Clone)]
pub struct Clipping<'a> {
    dp: &'a DpParameters,
    digits_after: u32,
    squares: bool,
}

/// The opened noisy slots, signed: sums in units of 10^−digits_after.
#[derive(Debug, Clone, PartialEq)]
pub struct Noisy {
    pub sum: BigInt,
    pub samples: i64,
    pub squares: Option<BigInt>,
}

impl<'a> Clipping<'a> {
    /// `dp` must be validated with bounds ([`DpParameters::validate`]).
    pub fn new(dp: &'a DpParameters, digits_after: u32, squares: bool) -> Clipping<'a> {
        Clipping {
            dp,
            digits_after,
            squares,
        }
    }

    fn bounds(&self) -> [BigRational; 2] {
        self.dp
            .bounds
            .expect("validated: dp needs bounds")
            .map(|b| BigRational::from_float(b).expect("validated: finite"))
    }

    fn scale(&self) -> BigRational {
        BigRational::from_integer(fixed_point::power_of_ten(self.digits_after))
    }

    /// The noise of each slot, in slot order (sum, count, squares), on an even share of the
    /// budget each.
    pub fn mechanisms(&self, parties: usize) -> Result<Vec<Mechanism>, String> {
        let [lo, hi] = self.bounds();
        let scale = self.scale();
        let shares = 2 + u32::from(self.squares);
        let mut sensitivities = vec![
            Sensitivity::magnitude(largest_units(&[lo.clone(), hi.clone()], &scale, self.digits_after)?),
            Sensitivity::COUNT,
        ];
        if self.squares {
            let largest = (&lo * &lo).max(&hi * &hi);
            let units = largest_units(&[largest], &scale, self.digits_after)
                .map_err(|e| format!("{e} (for the sum of squares, max(lo², hi²) counts)"))?;
            sensitivities.push(Sensitivity::magnitude(units));
        }
        sensitivities
            .into_iter()
            .map(|sensitivity| self.dp.mechanism_share(sensitivity, parties, shares))
            .collect()
    }

    /// A party's slots: every value clipped and put on the grid, then added up exactly.
    pub fn encode(&self, input: &Value) -> Result<Vec<Z256>, EncodingError> {
        let [lo, hi] = self.bounds();
        let scale = self.scale();
        let (mut total, mut squares) = (BigInt::zero(), BigInt::zero());
        let count = fixed_point::for_each_number(input, |number| {
            let value = match number {
                PyNumber::Int(int) => BigRational::from_integer(int),
                PyNumber::Float(float) => BigRational::from_float(float).expect("JSON numbers are finite"),
            };
            let clipped = value.clamp(lo.clone(), hi.clone());
            total += on_grid(&clipped, &scale);
            if self.squares {
                squares += on_grid(&(&clipped * &clipped), &scale);
            }
            Ok(())
        })?;
        // |total| ≤ count · sensitivity < 2^128, squares likewise: far from wrapping Z_2^256,
        // noise included.
        let mut slots = vec![Z256::from_bigint(&total), Z256::from_u64(count)];
        if self.squares {
            slots.push(Z256::from_bigint(&squares));
        }
        Ok(slots)
    }

    /// Adds this party's noise share to each slot, before the masked sum, and returns the
    /// output's `"dp"` object naming the mechanism of each.
    pub fn add_noise<const L: usize>(
        &self,
        slots: &mut [Zk<L>],
        parties: usize,
        rng: &mut dyn RngCore,
    ) -> Result<Value, String> {
        let mechanisms = self.mechanisms(parties)?;
        for (slot, mechanism) in slots.iter_mut().zip(&mechanisms) {
            *slot += Zk::from_bigint(&mechanism.draw(rng));
        }
        let mut described = json!({
            "bounds": self.dp.bounds,
            "digits_after": self.digits_after,
            "sum": mechanisms[0].describe(),
            "samples": mechanisms[1].describe(),
        });
        if let Some(squares) = mechanisms.get(2) {
            described["sum_of_squares"] = squares.describe();
        }
        Ok(described)
    }

    /// The opened slots, read back signed (noise can make any of them negative).
    pub fn open<const L: usize>(&self, total: &[Zk<L>]) -> Result<Noisy, ProtocolError> {
        let samples = total[1]
            .to_signed_bigint()
            .to_i64()
            .ok_or_else(|| ProtocolError::Malformed {
                from: 0,
                reason: "the reconstructed noisy count is not a plausible number".into(),
            })?;
        Ok(Noisy {
            sum: total[0].to_signed_bigint(),
            samples,
            squares: self.squares.then(|| total[2].to_signed_bigint()),
        })
    }

    /// A slot's total in units of the grid as a double (the reference's fixed-point decoding).
    pub fn decode(&self, units: &BigInt) -> f64 {
        fixed_point::decode(units, self.digits_after)
    }

    /// A slot's total in units of the grid, exactly.
    pub fn value(&self, units: &BigInt) -> BigRational {
        BigRational::new(units.clone(), fixed_point::power_of_ten(self.digits_after))
    }
}

/// The grid a protocol with clipped values needs: its `digits_after`, required.
pub fn grid(digits_after: Option<u32>) -> Result<u32, String> {
    digits_after.ok_or_else(|| {
        "dp needs digits_after: each value is clipped to dp.bounds and rounded to the grid \
         10^-digits_after, on which the sensitivity and the noise are counted"
            .to_string()
    })
}

/// The sensitivity of the sum in units of 10^−digits_after: the largest |value| a clipped value
/// can encode to, max(|grid(lo)|, |grid(hi)|) (at most ⌈max(|lo|, |hi|)·10^digits_after⌉; rounding
/// is monotone, so every clipped value encodes between grid(lo) and grid(hi)). Refused when it is
/// 0 (the bounds vanish on the grid) or reaches 2^64.
pub fn sensitivity_units(bounds: [f64; 2], digits_after: u32) -> Result<u64, String> {
    let scale = BigRational::from_integer(fixed_point::power_of_ten(digits_after));
    let bounds = bounds.map(|b| BigRational::from_float(b).expect("validated: finite"));
    largest_units(&bounds, &scale, digits_after)
}

/// The largest |grid(b)| of the extremes `bounds` in units of the grid, refused at 0 or 2^64.
fn largest_units(bounds: &[BigRational], scale: &BigRational, digits_after: u32) -> Result<u64, String> {
    let units = bounds
        .iter()
        .map(|b| on_grid(b, scale).abs())
        .max()
        .expect("at least one bound");
    match units.to_u64() {
        Some(0) => Err(format!(
            "dp.bounds round to 0 on the grid 10^-{digits_after}: choose more digits_after"
        )),
        Some(units) => Ok(units),
        None => Err(format!(
            "dp.bounds are {units} units of 10^-{digits_after}, beyond 2^64: choose fewer digits_after"
        )),
    }
}

/// `value` in units of the grid 1/`scale`: the nearest integer to value·scale, ties away from
/// zero. Exact (rationals), and a function of the value alone, so one record moves a party's
/// total by exactly its own encoding, whatever the others are.
fn on_grid(value: &BigRational, scale: &BigRational) -> BigInt {
    (value * scale).round().to_integer()
}
