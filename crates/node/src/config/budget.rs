//! The privacy budget's caps in a node's policy: `[policy.budget]` (node-wide, with the period)
//! and `budget = { ... }` in a `[[policy.clients]]` table (README, "Privacy budget").
//!
//! Only the caps are configuration; what a computation costs, what has been spent and whether a
//! cost fits are `crate::budget`'s (the ledger is in the store).

use crate::error::Error;
use serde::{Deserialize, Serialize};

/// Most days a period may span: a longer one is a lifetime budget, which is no period at all.
const MAX_PERIOD_DAYS: u32 = 36_500;

/// `[policy.budget]`: the node's total over all its API clients, and the period every cap
/// covers (the node's and the clients').
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
    /// The sliding window the caps cover, in days back from now (absent: the node's whole life,
    /// a charge never expires).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_days: Option<u32>,
}

/// Caps on each kind of cost; an absent one leaves that kind unlimited (as every other policy
/// key: absent allows). Zero allows none of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caps {
    /// The sum of ε of pure and approximate DP computations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    /// The sum of δ of approximate DP computations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
    /// The sum of ρ of zero-concentrated DP (zCDP) computations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
}

impl Budget {
    /// The node-wide caps (without the period).
    pub fn caps(&self) -> Caps {
        Caps {
            epsilon: self.epsilon,
            delta: self.delta,
            rho: self.rho,
        }
    }

    /// The period in milliseconds, if the caps cover one.
    pub fn period_ms(&self) -> Option<i64> {
        self.period_days.map(|days| i64::from(days) * 86_400_000)
    }

    pub fn validate(&self) -> Result<(), Error> {
        self.caps().validate("policy.budget")?;
        if self.period_days.is_some_and(|d| !(1..=MAX_PERIOD_DAYS).contains(&d)) {
            return Err(Error::Config(format!(
                "policy.budget.period_days must be between 1 and {MAX_PERIOD_DAYS} (absent: no period, a lifetime budget)"
            )));
        }
        Ok(())
    }
}

impl Caps {
    /// Caps are finite and not negative; δ is a probability.
    pub fn validate(&self, key: &str) -> Result<(), Error> {
        for (name, cap) in [("epsilon", self.epsilon), ("delta", self.delta), ("rho", self.rho)] {
            if let Some(cap) = cap {
                if !cap.is_finite() || cap < 0.0 || (name == "delta" && cap >= 1.0) {
                    return Err(Error::Config(format!(
                        "{key}.{name} must be a finite number at least 0{}, got {cap}",
                        if name == "delta" { " and below 1" } else { "" }
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_are_checked() {
        let budget = |epsilon, delta, period_days| Budget {
            epsilon: Some(epsilon),
            delta: Some(delta),
            rho: None,
            period_days,
        };
        budget(10.0, 1e-5, Some(30)).validate().unwrap();
        budget(0.0, 0.0, None).validate().unwrap();
        for (bad, key) in [
            (budget(-1.0, 0.0, None), "epsilon"),
            (budget(f64::INFINITY, 0.0, None), "epsilon"),
            (budget(1.0, 1.0, None), "delta"),
            (budget(1.0, 0.0, Some(0)), "period_days"),
        ] {
            let error = bad.validate().unwrap_err().to_string();
            assert!(error.contains(key), "{error}");
        }
        assert_eq!(budget(1.0, 0.0, Some(2)).period_ms(), Some(2 * 86_400_000));
    }
}
