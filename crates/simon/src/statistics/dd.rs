//! Double-double numbers: a value as the unevaluated sum hi + lo of two doubles (|lo| ≤ half an
//! ulp of hi), about 106 bits of precision at the cost of a few double operations. A party
//! summarises its values in them before any centre is known (`crate::statistics::moments`), so
//! that shifting the summary to the public centre later loses nothing a statistic could show.
//!
//! Products use Dekker's splitting rather than a fused multiply-add: the baseline x86-64 target
//! has no FMA instruction, and `f64::mul_add` then calls a slow software routine. Operands must
//! stay below 2^995 in magnitude, which the callers' scaling guarantees. This module owns the
//! arithmetic only, and its exact conversion to and from rationals.

use crate::statistics::exact::{exact, to_f64};
use num_rational::BigRational;
use serde::{Deserialize, Serialize};
use std::ops::{Add, Mul, Neg, Sub};

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Dd {
    pub hi: f64,
    pub lo: f64,
}

/// a + b = s + e exactly (Knuth).
#[inline(always)]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let v = s - a;
    (s, (a - (s - v)) + (b - v))
}

/// a + b = s + e exactly when |a| ≥ |b| (or a is 0).
#[inline(always)]
fn fast_two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    (s, b - (s - a))
}

/// a = high + low, each with at most 26 significant bits (Veltkamp): computed once for a factor
/// of several products (see [`Dd::mul_split`]).
#[inline(always)]
pub fn split_of(a: f64) -> (f64, f64) {
    let c = 134_217_729.0 * a; // 2^27 + 1
    let high = c - (c - a);
    (high, a - high)
}

/// a · b = p + e exactly (Dekker), given b already split.
#[inline(always)]
fn two_prod_split(a: f64, b: f64, (bh, bl): (f64, f64)) -> (f64, f64) {
    let p = a * b;
    let (ah, al) = split_of(a);
    (p, ((ah * bh - p) + ah * bl + al * bh) + al * bl)
}

impl Dd {
    pub const ZERO: Dd = Dd { hi: 0.0, lo: 0.0 };

    pub fn from_f64(x: f64) -> Dd {
        Dd { hi: x, lo: 0.0 }
    }

    /// a − b, exactly, for doubles whose difference does not overflow.
    pub fn difference(a: f64, b: f64) -> Dd {
        let (hi, lo) = two_sum(a, -b);
        Dd { hi, lo }
    }

    /// 1/x to about 2^−104 relative, for 1 ≤ |x| < 2^900 (beyond, the residual would overflow
    /// the splitting; the reciprocal is then below 2^−900 and counts as its double).
    pub fn reciprocal(x: f64) -> Dd {
        let hi = 1.0 / x;
        if x.abs() >= 2f64.powi(900) {
            return Dd::from_f64(hi);
        }
        let (p, e) = two_prod_split(hi, x, split_of(x));
        // (1 − hi·x)/x: the residual is 2^−53 of the value, so its own product by hi (not a
        // second division) is accurate enough.
        Dd {
            hi,
            lo: ((1.0 - p) - e) * hi,
        }
    }

    /// The product by `b` whose high part's split is given (the same factor for many products).
    #[inline(always)]
    pub fn mul_split(self, b: Dd, b_split: (f64, f64)) -> Dd {
        let (hi, lo) = self.mul_unnormalised::<false>(b, b_split);
        let (hi, lo) = fast_two_sum(hi, lo);
        Dd { hi, lo }
    }

    /// [`Dd::mul_split`] without the final renormalisation: lo may exceed half an ulp of hi by
    /// a few ulps, which the next product or sum absorbs (the hot loop of a party's moments).
    /// With `FMA`, the exact product's error term comes from one fused multiply-add instead of
    /// Dekker's splitting: the same exact value, so the result is identical bit for bit; only
    /// call it so from code compiled with the FMA target feature (else it is a slow libm call).
    #[inline(always)]
    pub fn mul_unnormalised<const FMA: bool>(self, b: Dd, b_split: (f64, f64)) -> (f64, f64) {
        let (p, e) = if FMA {
            let p = self.hi * b.hi;
            (p, self.hi.mul_add(b.hi, -p))
        } else {
            two_prod_split(self.hi, b.hi, b_split)
        };
        (p, e + (self.lo * b.hi + self.hi * b.lo))
    }

    /// Adds a term into a running sum with one exact addition of the high parts; the errors
    /// gather in lo unrenormalised (2^−104·n relative after n terms, as a renormalised sum).
    #[inline(always)]
    pub fn accumulate(&mut self, hi: f64, lo: f64) {
        let (s, e) = two_sum(self.hi, hi);
        self.hi = s;
        self.lo += e + lo;
    }

    /// x · 2^k, exactly unless the result leaves the normal range (then rounded as doubles are).
    pub fn scaled(self, k: i64) -> Dd {
        Dd {
            hi: scale2(self.hi, k),
            lo: scale2(self.lo, k),
        }
    }

    /// The value, exactly.
    pub fn to_rational(self) -> BigRational {
        exact(self.hi) + exact(self.lo)
    }

    /// The double-double nearest to a rational (hi correctly rounded, lo the rest rounded).
    pub fn of_rational(value: &BigRational) -> Dd {
        let hi = to_f64(value);
        Dd {
            hi,
            lo: to_f64(&(value - exact(hi))),
        }
    }

    /// ln x for x > 0 (and well inside the double range), to about 2^−100 absolute:
    /// x = 2^k · m with m in [√½, √2), ln m = 2 atanh z for z = (m − 1)/(m + 1), |z| < 0.172,
    /// summed until the terms vanish. For one value per party: no tables, no speed.
    pub fn ln(self) -> Dd {
        let mut k = self.hi.log2().round() as i64;
        let mut m = self.scaled(-k);
        if m.hi > std::f64::consts::SQRT_2 {
            m = m.scaled(-1);
            k += 1;
        } else if m.hi < std::f64::consts::FRAC_1_SQRT_2 {
            m = m.scaled(1);
            k -= 1;
        }
        let one = Dd::from_f64(1.0);
        let z = (m - one) / (m + one);
        let z2 = z * z;
        let (mut term, mut sum) = (z, z);
        for j in 1..40 {
            term = term * z2;
            let next = term / Dd::from_f64((2 * j + 1) as f64);
            if next.hi.abs() <= 1e-34 * sum.hi.abs() {
                break;
            }
            sum = sum + next;
        }
        sum.scaled(1) + LN_2 * Dd::from_f64(k as f64)
    }

    /// e^x for |x| < 709, to about 2^−95 relative: x = k·ln 2 + r, |r| ≤ ln 2 / 2, then
    /// e^(r/2^10) by its series and ten squarings.
    pub fn exp(self) -> Dd {
        let k = (self.hi / std::f64::consts::LN_2).round();
        let r = (self - LN_2 * Dd::from_f64(k)).scaled(-10);
        let (mut term, mut sum) = (Dd::from_f64(1.0), Dd::from_f64(1.0));
        for j in 1..30 {
            term = term * r / Dd::from_f64(j as f64);
            sum = sum + term;
        }
        for _ in 0..10 {
            sum = sum * sum;
        }
        sum.scaled(k as i64)
    }
}

/// ln 2 as a double-double.
pub const LN_2: Dd = Dd {
    hi: std::f64::consts::LN_2,
    lo: 2.319_046_813_846_299_6e-17,
};

impl Add for Dd {
    type Output = Dd;
    #[inline(always)]
    fn add(self, b: Dd) -> Dd {
        let (s, e) = two_sum(self.hi, b.hi);
        let (t, f) = two_sum(self.lo, b.lo);
        let (s, e) = fast_two_sum(s, e + t);
        let (hi, lo) = fast_two_sum(s, e + f);
        Dd { hi, lo }
    }
}

impl Neg for Dd {
    type Output = Dd;
    fn neg(self) -> Dd {
        Dd {
            hi: -self.hi,
            lo: -self.lo,
        }
    }
}

impl Sub for Dd {
    type Output = Dd;
    fn sub(self, b: Dd) -> Dd {
        self + (-b)
    }
}

impl Mul for Dd {
    type Output = Dd;
    #[inline(always)]
    fn mul(self, b: Dd) -> Dd {
        self.mul_split(b, split_of(b.hi))
    }
}

impl std::ops::Div for Dd {
    type Output = Dd;
    /// Long division with one correction step: about 2^−104 relative.
    fn div(self, b: Dd) -> Dd {
        let q1 = self.hi / b.hi;
        let r = self - b * Dd::from_f64(q1);
        let q2 = r.hi / b.hi;
        let (hi, lo) = fast_two_sum(q1, q2);
        Dd { hi, lo }
    }
}

/// x · 2^k for any k, in steps that stay representable: exact unless the result leaves the
/// normal range.
pub fn scale2(mut x: f64, mut k: i64) -> f64 {
    while k > 1000 {
        x *= 2f64.powi(1000);
        k -= 1000;
    }
    while k < -1000 {
        x *= 2f64.powi(-1000);
        k += 1000;
    }
    x * 2f64.powi(k as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_traits::One;

    fn close(a: Dd, b: f64, tolerance: f64) -> bool {
        (a.hi - b + a.lo).abs() <= tolerance * b.abs()
    }

    #[test]
    fn reciprocals_and_products_are_double_double_accurate() {
        for x in [3.0, 1.0 + f64::EPSILON, 7.123456789, 1e30, 2f64.powi(899)] {
            let r = Dd::reciprocal(x);
            // r·x − 1 exactly, from the rationals.
            let error = r.to_rational() * exact(x) - BigRational::one();
            assert!(to_f64(&error).abs() < 1e-31, "1/{x}: {}", to_f64(&error));
        }
        let third = Dd::from_f64(1.0) / Dd::from_f64(3.0);
        let error = third.to_rational() * BigRational::from_integer(3.into()) - BigRational::one();
        assert!(to_f64(&error).abs() < 1e-31);
    }

    #[test]
    fn ln_and_exp_agree_with_the_doubles_and_invert_each_other() {
        for x in [0.5, 1.0, 2.0, 10.0, 1e-300, 1e300, 12345.678] {
            let l = Dd::from_f64(x).ln();
            assert!(close(l, x.ln(), 1e-15) || x == 1.0, "ln {x}");
            let back = l.exp();
            let error = (back.to_rational() - exact(x)) / exact(x);
            assert!(to_f64(&error).abs() < 1e-29, "exp(ln {x}): {}", to_f64(&error));
        }
        assert!(close(Dd::from_f64(1.0).exp(), std::f64::consts::E, 1e-16));
    }

    #[test]
    fn conversions_are_exact() {
        for x in [0.1, -5e-324, f64::MAX, 1.0] {
            assert_eq!(to_f64(&exact(x)), x);
        }
        let v = Dd::difference(1e16, 1.0);
        assert_eq!(v.to_rational(), exact(1e16) - BigRational::one());
        assert_eq!(Dd::of_rational(&v.to_rational()), v);
        assert_eq!(scale2(5e-324, 2148), 2f64.powi(1074));
    }
}
