//! Centred power sums that stay exact to a double's precision however the data are offset: the
//! building block of the statistics protocols.
//!
//! A party summarises its values once, locally and in two passes (its count, exact sum, mean m_p,
//! largest magnitude s_p, and M_j = Σ((x − m_p)/s_p)^j). Once the global mean m and a public
//! scale s ≥ s_p are known, its share of Σ((x − m)/s)^k follows from the binomial shift
//! Σ_j C(k, j) (s_p/s)^j M_j ((m_p − m)/s)^(k−j) (Chan, Golub and LeVeque; Pébay), whose
//! terms are all bounded by the data's spread: no raw power sums, so no catastrophic cancellation
//! (the reference's kurtosis of 1e6 + {1..5} is 214748364.8; the truth is 1.7, W16). Only the
//! summary is kept, never the values. This module owns the arithmetic; the sums are the protocols'.

use crate::statistics::reals::ExactSum;
use serde::{Deserialize, Serialize};

/// The highest power summed (hyper-flatness is the sixth standardised moment).
pub const MAX_POWER: usize = 6;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalMoments {
    pub count: u64,
    pub sum: ExactSum,
    mean: f64,
    scale: f64,
    /// M_0..M_6 of the values centred on `mean` and divided by `scale`.
    central: [f64; MAX_POWER + 1],
}

impl LocalMoments {
    pub fn of(values: &[f64]) -> LocalMoments {
        let sum = ExactSum::of(values.iter().copied());
        let count = values.len() as u64;
        let mean = if count == 0 {
            0.0
        } else {
            crate::statistics::reals::decode(sum.encoded(), count)
        };
        let scale = values.iter().fold(0.0f64, |s, x| s.max(x.abs()));
        let scale = if scale == 0.0 { 1.0 } else { scale };
        let mut central = [0.0; MAX_POWER + 1];
        for &x in values {
            // (x − mean) may overflow for values near ±f64::MAX; halving both keeps it finite.
            let u = (x / 2.0 - mean / 2.0) / (scale / 2.0);
            let mut power = 1.0;
            for m in &mut central {
                *m += power;
                power *= u;
            }
        }
        LocalMoments {
            count,
            sum,
            mean,
            scale,
            central,
        }
    }

    /// This party's Σ((x − mean)/scale)^k for k = 2..=6, about the global `mean` in the global
    /// `scale` (at least every party's largest magnitude).
    pub fn centred(&self, mean: f64, scale: f64) -> [f64; MAX_POWER - 1] {
        let ratio = self.scale / scale;
        let shift = (self.mean / 2.0 - mean / 2.0) / (scale / 2.0);
        let mut out = [0.0; MAX_POWER - 1];
        for (k, slot) in (2..=MAX_POWER).zip(&mut out) {
            *slot = (0..=k)
                .map(|j| binomial(k, j) * ratio.powi(j as i32) * self.central[j] * shift.powi((k - j) as i32))
                .sum();
        }
        out
    }
}

fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_data_gives_the_centred_sums_of_the_whole() {
        let all = [1000001.0, 1000002.0, 1000003.0, 1000004.0, 1000005.0];
        let (a, b) = (LocalMoments::of(&all[..3]), LocalMoments::of(&all[3..]));
        let scale = 1000005.0;
        let total: Vec<f64> = (0..5)
            .map(|k| a.centred(1000003.0, scale)[k] + b.centred(1000003.0, scale)[k])
            .collect();
        // Σ(x − m)^k for deviations −2..2: 10, 0, 34, 0, 130.
        for (k, want) in [10.0, 0.0, 34.0, 0.0, 130.0].iter().enumerate() {
            let got = total[k] * scale.powi(k as i32 + 2);
            assert!((got - want).abs() <= 1e-9 * want.max(1.0), "k = {}: {got}", k + 2);
        }
    }
}
