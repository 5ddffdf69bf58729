//! Exact rationals for the statistics' final arithmetic: every statistic is computed exactly from
//! the opened totals (which are exact multiples of their grids) and rounded once, correctly, to
//! a double, square roots included. So the only errors of a result are the grids' and the
//! parties' summaries', both bounded by the protocols (docs/protocols.md states each bound),
//! and intermediate values beyond the double range (a variance of 1e600) cost nothing.

use crate::fixed_point::{decompose, ratio_to_f64};
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, Zero};

/// A finite double as the rational it is.
pub fn exact(x: f64) -> BigRational {
    let (mantissa, power, negative) = decompose(x);
    let mantissa = BigInt::from(mantissa) * if negative { -1 } else { 1 };
    mantissa_times_power_of_two(mantissa, i64::from(power))
}

/// m · 2^k as a rational.
pub fn mantissa_times_power_of_two(m: BigInt, k: i64) -> BigRational {
    if k >= 0 {
        BigRational::from_integer(m << k as usize)
    } else {
        BigRational::new(m, BigInt::one() << (-k) as usize)
    }
}

/// The double nearest to a rational (ties to even); ±infinity beyond the double range.
pub fn to_f64(value: &BigRational) -> f64 {
    ratio_to_f64(value.numer(), value.denom())
}

/// The double nearest to √value (ties to even), for value ≥ 0; infinity beyond the range.
///
/// With Q = ⌊value · 4^k⌋ ≥ 2^112 and s = ⌊√Q⌋ ≥ 2^56, √value lies in [s, s + 1)/2^k, and
/// exactly at s/2^k only when Q is exact and a square. No rounding boundary of a double lies
/// strictly between s and s + 1 at that scale, so s + ½ rounds as any point of the open
/// interval does.
pub fn sqrt_to_f64(value: &BigRational) -> f64 {
    assert!(!value.is_negative(), "square root of a negative number");
    if value.is_zero() {
        return 0.0;
    }
    let k = (113 - (value.numer().bits() as i64 - value.denom().bits() as i64)).div_euclid(2) + 1;
    let scaled = value * mantissa_times_power_of_two(BigInt::one(), 2 * k);
    let q = scaled.to_integer();
    let s = q.sqrt();
    let inexact = !scaled.is_integer() || &s * &s != q;
    let (numerator, power) = if inexact { (s * 2 + 1, -k - 1) } else { (s, -k) };
    to_f64(&mantissa_times_power_of_two(numerator, power))
}

/// A statistic as JSON: `null` where it is undefined (`None`) or beyond the double range.
pub fn number(x: Option<f64>) -> serde_json::Value {
    match x {
        Some(x) if x.is_finite() => serde_json::json!(x),
        _ => serde_json::Value::Null,
    }
}

/// sign(value) · √|square|, the square given exactly: a standardised odd moment.
pub fn signed_sqrt_to_f64(sign_of: &BigRational, square: &BigRational) -> f64 {
    let root = sqrt_to_f64(square);
    if sign_of.is_negative() { -root } else { root }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_correctly_rounded() {
        for x in [2.0, 0.5, 1e-300, 5e-324, 1e300, 16.0, 1.0 + f64::EPSILON] {
            assert_eq!(sqrt_to_f64(&exact(x)), x.sqrt(), "√{x}");
        }
        // √(1e600) is 1e300, far beyond any double square.
        let big = exact(1e300) * exact(1e300);
        assert_eq!(sqrt_to_f64(&big), 1e300);
        let third = BigRational::new(1.into(), 3.into());
        assert_eq!(sqrt_to_f64(&third), (1.0f64 / 3.0).sqrt());
        assert_eq!(signed_sqrt_to_f64(&exact(-2.0), &exact(4.0)), -2.0);
    }

    #[test]
    fn doubles_convert_exactly() {
        for x in [0.1, -5e-324, f64::MAX, 1.0, -0.0] {
            assert_eq!(to_f64(&exact(x)), x);
        }
    }
}
