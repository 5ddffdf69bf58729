//! The privacy budget's caps in a node's policy: `[policy.budget]` (node-wide, with the period)
//! and `budget = { ... }` in a `[[policy.clients]]` table (README, "Privacy budget").
//!
//! Only the caps are configuration; what a computation costs, what has been spent and whether a
//! cost fits are `crate::budget`'s (the ledger is in the store).

use crate::error::Error;
use serde::{Deserialize, Serialize};

/// Most days a period may span: a longer one is a lifetime budget, which is no period at all.
const MAX_PERIOD_DAYS: u32 = 36_500;

/// Caps on each kind of cost; an absent one leaves that kind unlimited (as every other policy
/// key: absent allows). Zero allows none of it. One type for the node's table and the clients':
/// only the node's names the period, which covers every cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// The sum of ε of pure and approximate DP computations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    /// The sum of δ of approximate DP computations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
    /// The sum of ρ of zero-concentrated DP (zCDP) computations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
    /// The sliding window the caps cover, in days back from now (absent: the node's whole life,
    /// a charge never expires). The node's table only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_days: Option<u32>,
}

impl Budget {
    /// The caps in the order ε, δ, ρ.
    pub fn caps(&self) -> [Option<f64>; 3] {
        [self.epsilon, self.delta, self.rho]
    }

    /// The period in milliseconds, if the caps cover one.
    pub fn period_ms(&self) -> Option<i64> {
        self.period_days.map(|days| i64::from(days) * 86_400_000)
    }

    /// Caps are finite and not negative, δ is a probability; `key` names the table, and only
    /// the node's (`node`) may name a period.
    pub fn validate(&self, key: &str, node: bool) -> Result<(), Error> {
        for (name, cap) in ["epsilon", "delta", "rho"].into_iter().zip(self.caps()) {
            if let Some(cap) = cap {
                if !cap.is_finite() || cap < 0.0 || (name == "delta" && cap >= 1.0) {
                    return Err(Error::Config(format!(
                        "{key}.{name} must be a finite number at least 0{}, got {cap}",
                        if name == "delta" { " and below 1" } else { "" }
                    )));
                }
            }
        }
        match self.period_days {
            Some(_) if !node => Err(Error::Config(format!(
                "{key}.period_days: the period is the node's, policy.budget.period_days"
            ))),
            Some(days) if !(1..=MAX_PERIOD_DAYS).contains(&days) => Err(Error::Config(format!(
                "{key}.period_days must be between 1 and {MAX_PERIOD_DAYS} (absent: no period, a lifetime budget)"
            ))),
            _ => Ok(()),
        }
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
        budget(10.0, 1e-5, Some(30)).validate("policy.budget", true).unwrap();
        budget(0.0, 0.0, None).validate("policy.clients.budget", false).unwrap();
        for (bad, node, key) in [
            (budget(-1.0, 0.0, None), true, "epsilon"),
            (budget(f64::INFINITY, 0.0, None), true, "epsilon"),
            (budget(1.0, 1.0, None), true, "delta"),
            (budget(1.0, 0.0, Some(0)), true, "period_days"),
            (budget(1.0, 0.0, Some(30)), false, "the period is the node's"),
        ] {
            let error = bad.validate("policy.budget", node).unwrap_err().to_string();
            assert!(error.contains(key), "{error}");
        }
        assert_eq!(budget(1.0, 0.0, Some(2)).period_ms(), Some(2 * 86_400_000));
    }
}
