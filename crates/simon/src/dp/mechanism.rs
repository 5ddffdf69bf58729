//! The `dp` parameter and its calibration: which noise each party adds to its contribution to a
//! masked sum so that the opened total is differentially private.
//!
//! Schema (inside a definition's parameters, agreed by every party like the rest of them):
//! - `{"epsilon": ε}`: pure ε-DP by the discrete Laplace mechanism, scale Δ₁/ε;
//! - `{"rho": ρ}`: ρ-zCDP by the discrete Gaussian, σ² = Δ₂²/(2ρ) (CKS 2020, Theorem 4);
//! - `{"epsilon": ε, "delta": δ}`: (ε, δ)-DP by the discrete Gaussian calibrated through zCDP: the
//!   largest ρ with ρ + 2√(ρ·ln(1/δ)) ≤ ε, i.e. ρ = (√(ln(1/δ) + ε) − √ln(1/δ))² (Bun–Steinke 2016,
//!   Proposition 1.3; conservative: a tighter conversion would need less noise);
//! - `"collusion": t` (optional, default n − 1): how many parties may pool their own noise
//!   shares and subtract them from the total without breaking the guarantee;
//! - `"bounds": [lo, hi]` (optional, where the protocol's sensitivity needs it: clipping).
//!
//! Collusion. Every party draws its share from the *full* calibrated distribution, so that any
//! single honest party's share alone makes the total private: the guarantee holds against any
//! coalition of up to n − 1 parties, which is the trust model of the masked sum itself (no party
//! trusts another). The cost is n times the variance a trusted curator would add. A smaller t
//! could split the noise (the sum of n − t discrete Gaussians of variance σ²/(n − t) is close to,
//! not exactly, a discrete Gaussian: Kairouz–Liu–Steinke 2021); that bound is not implemented, so
//! only t = n − 1 is accepted, and no sum of discrete Laplace shares is claimed to be one.
//!
//! Floating point here only turns the JSON parameters into exact rationals (a double *is* a
//! dyadic rational, converted without rounding) and computes the ρ of an (ε, δ) request, rounded
//! towards more noise. The sampling itself is exact ([`crate::dp::samplers`]).

use crate::dp::samplers;
use crate::z2k::Zk;
use num_bigint::{BigInt, BigUint, Sign};
use num_rational::BigRational;
use num_traits::{ToPrimitive, Zero};
use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `"dp"` as a definition states it. Validated by [`DpParameters::validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
    /// Filled in with n − 1 by validation, so that every party's normalised parameters say it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collusion: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounds: Option<[f64; 2]>,
}

/// The largest noise scale (Laplace scale or Gaussian σ) a party may add, per unit of sensitivity:
/// 2^32. Far beyond any useful release; for a count (sensitivity 1) small enough that n parties'
/// noise never wraps its ring Z_2^64, and for SecureSum (sensitivity below 2^64) that it never
/// wraps Z_2^256.
const MAX_SCALE: u64 = 1 << 32;

/// How much one record moves the protocol's summed vector: in L1 (the Laplace mechanism) and in
/// L2, squared (the Gaussian), on the integer grid the sum runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sensitivity {
    pub l1: u64,
    /// u128: a one-coordinate sensitivity Δ < 2^64 (SecureSum's) has Δ² up to 2^128.
    pub l2_squared: u128,
}

impl Sensitivity {
    /// One record adds one to one cell: a count, a histogram, a contingency table.
    pub const COUNT: Sensitivity = Sensitivity { l1: 1, l2_squared: 1 };

    /// One record moves one coordinate by at most `units` (a clipped value on its grid).
    pub fn magnitude(units: u64) -> Sensitivity {
        Sensitivity {
            l1: units,
            l2_squared: u128::from(units) * u128::from(units),
        }
    }
}

fn positive_finite(name: &str, value: f64) -> Result<(), String> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(format!("dp.{name} must be a positive finite number, got {value}"))
    }
}

impl DpParameters {
    /// Checks the parameter for a computation of `parties` parties; `bounds_wanted`: whether the
    /// protocol needs clipping bounds (and then requires them) or has no use for them (and then
    /// refuses them). Returns it with `collusion` filled in.
    pub fn validate(self, parties: usize, bounds_wanted: bool) -> Result<DpParameters, String> {
        match (self.epsilon, self.rho) {
            (Some(_), Some(_)) => return Err("dp takes either epsilon (with or without delta) or rho, not both".into()),
            (None, None) => return Err("dp needs epsilon (pure or with delta) or rho".into()),
            _ => {}
        }
        if let Some(epsilon) = self.epsilon {
            positive_finite("epsilon", epsilon)?;
        }
        if let Some(rho) = self.rho {
            positive_finite("rho", rho)?;
        }
        if let Some(delta) = self.delta {
            if self.rho.is_some() {
                return Err("dp.delta goes with epsilon; rho (zCDP) takes no delta".into());
            }
            if !(delta.is_finite() && delta > 0.0 && delta < 1.0) {
                return Err(format!("dp.delta must lie strictly between 0 and 1, got {delta}"));
            }
        }
        let most = parties - 1;
        let collusion = self.collusion.unwrap_or(most);
        if collusion == 0 || collusion > most {
            return Err(format!(
                "dp.collusion must be between 1 and {most} (the parties but one), got {collusion}"
            ));
        }
        if collusion != most {
            return Err(format!(
                "dp.collusion below n − 1 is not supported: every party adds the full noise, so the \
                 guarantee holds for any {most} colluding parties; omit it or set {most}"
            ));
        }
        match (self.bounds, bounds_wanted) {
            (None, true) => return Err("dp needs bounds [lo, hi] here: the values are clipped to them".into()),
            (Some(_), false) => return Err("dp.bounds: this protocol counts records and takes no bounds".into()),
            (Some([lo, hi]), true) if !(lo.is_finite() && hi.is_finite() && lo < hi) => {
                return Err(format!("dp.bounds must be finite numbers lo < hi, got [{lo}, {hi}]"));
            }
            _ => {}
        }
        Ok(DpParameters {
            collusion: Some(collusion),
            ..self
        })
    }

    /// The guarantee's ρ (zCDP), if it is a Gaussian one: given, or implied by (ε, δ).
    pub fn rho(&self) -> Option<f64> {
        match (self.epsilon, self.delta, self.rho) {
            (_, _, Some(rho)) => Some(rho),
            (Some(epsilon), Some(delta), None) => {
                let log = (1.0 / delta).ln();
                // Rounded down by a relative 10^-9, far beyond the doubles' error in ln and sqrt:
                // a smaller ρ is more noise, never less privacy.
                Some(((log + epsilon).sqrt() - log.sqrt()).powi(2) * (1.0 - 1e-9))
            }
            _ => None,
        }
    }

    /// Calibrates the noise of one party for a sum whose records move it by `sensitivity`.
    pub fn mechanism(&self, sensitivity: Sensitivity, parties: usize) -> Result<Mechanism, String> {
        self.mechanism_share(sensitivity, parties, 1)
    }

    /// As [`DpParameters::mechanism`], for one of `shares` statistics released together that
    /// split the budget evenly (basic composition: ε/shares each for pure DP, ρ/shares each for
    /// zCDP, which adds up exactly; an (ε, δ) request is split as its ρ).
    pub fn mechanism_share(&self, sensitivity: Sensitivity, parties: usize, shares: u32) -> Result<Mechanism, String> {
        let (noise, scale) = match (self.rho(), self.epsilon) {
            (Some(rho), _) => {
                // σ² = Δ₂² / (2ρ), ρ = p/q exactly: σ² = Δ₂²·q / (2p); ρ/shares = p/(q·shares).
                let (p, q) = exact(rho)?;
                let q = q * shares;
                let num = BigUint::from(sensitivity.l2_squared) * q;
                let den = BigUint::from(2u32) * p;
                let sigma = ratio_f64(&num, &den).sqrt();
                (Noise::Gaussian { num, den }, sigma)
            }
            (None, Some(epsilon)) => {
                // b = Δ₁/ε, ε = p/q exactly: b = Δ₁·q / p, sampled as t/s with t = Δ₁·q, s = p.
                let (p, q) = exact(epsilon)?;
                let q = q * shares;
                let t = BigUint::from(sensitivity.l1) * q;
                let scale = ratio_f64(&t, &p);
                (Noise::Laplace { s: p, t }, scale)
            }
            (None, None) => unreachable!("validated: epsilon or rho"),
        };
        let unit = (sensitivity.l1 as f64).max((sensitivity.l2_squared as f64).sqrt());
        if scale.is_nan() || scale > MAX_SCALE as f64 * unit {
            return Err(format!(
                "dp: the noise scale would be {scale:e}, beyond {MAX_SCALE} times the sensitivity \
                 (choose a larger epsilon or rho)"
            ));
        }
        Ok(Mechanism {
            noise,
            scale,
            parameters: self.clone(),
            sensitivity,
            parties,
            shares,
        })
    }
}

/// A positive double as the exact fraction p/q it is.
fn exact(value: f64) -> Result<(BigUint, BigUint), String> {
    let ratio = BigRational::from_float(value).ok_or("dp: not a finite number")?;
    let part = |n: &BigInt| BigUint::try_from(n.clone()).map_err(|_| "dp: not a positive number".to_string());
    let (p, q) = (part(ratio.numer())?, part(ratio.denom())?);
    if p.is_zero() {
        return Err("dp: not a positive number".into());
    }
    Ok((p, q))
}

/// num/den as a double, for reporting only.
fn ratio_f64(num: &BigUint, den: &BigUint) -> f64 {
    BigRational::new(
        BigInt::from_biguint(Sign::Plus, num.clone()),
        BigInt::from_biguint(Sign::Plus, den.clone()),
    )
    .to_f64()
    .unwrap_or(f64::INFINITY)
}

/// The distribution of one party's noise share, as exact rationals.
#[derive(Debug, Clone, PartialEq)]
pub enum Noise {
    /// Discrete Laplace of scale t/s.
    Laplace { s: BigUint, t: BigUint },
    /// Discrete Gaussian of variance parameter σ² = num/den.
    Gaussian { num: BigUint, den: BigUint },
}

/// A calibrated mechanism: what each party adds, and how the output names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mechanism {
    pub noise: Noise,
    /// The Laplace scale b or the Gaussian σ of one party's share (reported, not sampled from).
    pub scale: f64,
    parameters: DpParameters,
    sensitivity: Sensitivity,
    parties: usize,
    /// How many statistics share the budget evenly (1: this one has all of it).
    shares: u32,
}

impl Mechanism {
    /// One party's noise share for one coordinate of the sum.
    pub fn draw(&self, rng: &mut dyn RngCore) -> BigInt {
        match &self.noise {
            Noise::Laplace { s, t } => samplers::discrete_laplace(s, t, rng),
            Noise::Gaussian { num, den } => samplers::discrete_gaussian(num, den, rng),
        }
    }

    /// Adds one party's noise share to every coordinate of its contribution to a masked sum, as
    /// ring residues (wrap-around is harmless: the total is read back signed). What protocols
    /// call, and what the distribution tests sample through.
    pub fn add_noise<const L: usize>(&self, vector: &mut [Zk<L>], rng: &mut dyn RngCore) {
        for value in vector {
            *value += Zk::from_bigint(&self.draw(rng));
        }
    }

    /// The variance of one party's share: 2q/(1 − q)² with q = e^{−1/b} for the discrete
    /// Laplace; for the discrete Gaussian, below σ² and within 10^-11 of it from σ ≥ 1 (CKS 2020,
    /// Proposition 19 and Figure 2), reported as σ².
    pub fn per_party_variance(&self) -> f64 {
        match self.noise {
            Noise::Laplace { .. } => {
                let q = (-1.0 / self.scale).exp();
                2.0 * q / (1.0 - q).powi(2)
            }
            Noise::Gaussian { .. } => self.scale * self.scale,
        }
    }

    /// The output's `"dp"` object: the mechanism, the guarantee and the noise actually added.
    pub fn describe(&self) -> Value {
        let p = &self.parameters;
        let mut out = match self.noise {
            Noise::Laplace { .. } => json!({
                "mechanism": "discrete_laplace",
                "epsilon": p.epsilon,
                "scale": self.scale,
                "per_party_scale": self.scale,
            }),
            Noise::Gaussian { .. } => {
                let mut out = json!({
                    "mechanism": "discrete_gaussian",
                    "rho": self.parameters.rho(),
                    "sigma": self.scale,
                    "per_party_sigma": self.scale,
                });
                if let (Some(epsilon), Some(delta)) = (p.epsilon, p.delta) {
                    out["epsilon"] = json!(epsilon);
                    out["delta"] = json!(delta);
                }
                out
            }
        };
        if self.shares > 1 {
            // epsilon, delta and rho above are the whole request's; this statistic's noise is
            // calibrated to its share of it.
            out["budget_share"] = json!(1.0 / f64::from(self.shares));
        }
        out["collusion"] = json!(p.collusion);
        out["sensitivity"] = json!({"l1": self.sensitivity.l1, "l2": (self.sensitivity.l2_squared as f64).sqrt()});
        out["per_party_variance"] = json!(self.per_party_variance());
        out["total_variance"] = json!(self.per_party_variance() * self.parties as f64);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dp(value: Value) -> Result<DpParameters, String> {
        serde_json::from_value::<DpParameters>(value)
            .map_err(|e| e.to_string())?
            .validate(3, false)
    }

    #[test]
    fn valid_parameters_fill_in_the_collusion() {
        assert_eq!(dp(json!({"epsilon": 1.0})).unwrap().collusion, Some(2));
        assert_eq!(dp(json!({"rho": 0.5, "collusion": 2})).unwrap().collusion, Some(2));
        assert!(dp(json!({"epsilon": 1.0, "delta": 1e-6})).is_ok());
    }

    #[test]
    fn invalid_parameters_are_refused_with_a_reason() {
        for (value, says) in [
            (json!({}), "needs epsilon"),
            (json!({"epsilon": 1.0, "rho": 1.0}), "not both"),
            (json!({"epsilon": 0.0}), "positive finite"),
            (json!({"epsilon": -1.0}), "positive finite"),
            (json!({"rho": 0}), "positive finite"),
            (json!({"rho": 1.0, "delta": 0.1}), "takes no delta"),
            (json!({"epsilon": 1.0, "delta": 1.0}), "strictly between"),
            (json!({"epsilon": 1.0, "delta": 0.0}), "strictly between"),
            (json!({"epsilon": 1.0, "collusion": 0}), "between 1 and 2"),
            (json!({"epsilon": 1.0, "collusion": 3}), "between 1 and 2"),
            (json!({"epsilon": 1.0, "collusion": 1}), "not supported"),
            (json!({"epsilon": 1.0, "bounds": [0, 1]}), "takes no bounds"),
            (json!({"epsilon": 1.0, "sigma": 1}), "unknown field"),
            (json!({"epsilon": "1"}), "invalid type"),
        ] {
            let error = dp(value.clone()).unwrap_err();
            assert!(error.contains(says), "{value}: {error}");
        }
        let bounded = |value: Value| serde_json::from_value::<DpParameters>(value).unwrap().validate(2, true);
        assert!(bounded(json!({"epsilon": 1.0})).unwrap_err().contains("needs bounds"));
        assert!(
            bounded(json!({"epsilon": 1.0, "bounds": [1, 1]}))
                .unwrap_err()
                .contains("lo < hi")
        );
        assert!(bounded(json!({"epsilon": 1.0, "bounds": [-1, 1]})).is_ok());
    }

    #[test]
    fn calibration_follows_the_textbook_formulas() {
        let m = dp(json!({"epsilon": 0.5}))
            .unwrap()
            .mechanism(Sensitivity::COUNT, 3)
            .unwrap();
        assert_eq!(m.scale, 2.0);
        assert_eq!(m.describe()["mechanism"], "discrete_laplace");
        let m = dp(json!({"rho": 0.125}))
            .unwrap()
            .mechanism(Sensitivity::COUNT, 3)
            .unwrap();
        assert_eq!(m.scale, 2.0); // σ² = 1/(2·0.125) = 4
        assert_eq!(
            m.noise,
            Noise::Gaussian {
                num: BigUint::from(8u32),
                den: BigUint::from(2u32)
            }
        );
        // (ε, δ) = (1, 1e-5): ρ = (√(ln 1e5 + 1) − √ln 1e5)² ≈ 0.0203, and ρ + 2√(ρ ln(1/δ)) ≤ ε.
        let p = dp(json!({"epsilon": 1.0, "delta": 1e-5})).unwrap();
        let rho = p.rho().unwrap();
        assert!(rho + 2.0 * (rho * 1e5f64.ln()).sqrt() <= 1.0);
        assert!((rho - 0.0203).abs() < 1e-3, "{rho}");
        let m = p.mechanism(Sensitivity::COUNT, 3).unwrap();
        assert_eq!(m.describe()["delta"], 1e-5);
        assert!(
            dp(json!({"epsilon": 1e-12}))
                .unwrap()
                .mechanism(Sensitivity::COUNT, 3)
                .is_err()
        );
    }

    proptest! {
        /// Whatever is asked, validation either refuses or yields a mechanism that draws.
        #[test]
        fn validated_parameters_always_calibrate(
            epsilon in prop::option::of(1e-9f64..1e6),
            delta in prop::option::of(1e-300f64..1.0),
            rho in prop::option::of(1e-9f64..1e6),
            collusion in prop::option::of(0usize..5),
            parties in 2usize..6,
        ) {
            let p = DpParameters { epsilon, delta, rho, collusion, bounds: None };
            if let Ok(p) = p.validate(parties, false) {
                prop_assert_eq!(p.collusion, Some(parties - 1));
                prop_assert!(p.epsilon.is_some() != p.rho.is_some());
                if let Ok(m) = p.mechanism(Sensitivity::COUNT, parties) {
                    prop_assert!(m.scale > 0.0 && m.scale <= MAX_SCALE as f64);
                    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
                    let _ = m.draw(&mut rng);
                }
            }
        }
    }
    use rand_core::SeedableRng;
}
