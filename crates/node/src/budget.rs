//! The privacy budget: what a computation costs, what has been spent, and whether a cost fits
//! the caps of the policy (`config::budget`). README, "Privacy budget".
//!
//! A computation's cost is its `dp` parameter: `{"epsilon": ε}` (pure DP), `{"epsilon": ε,
//! "delta": δ}` (approximate DP) or `{"rho": ρ}` (zero-concentrated DP); without one it costs
//! nothing. The engine validates `dp`; this reader only takes the numbers, tolerantly (a
//! definition the engine refuses never starts, so it is never charged).
//!
//! Composition is the basic one: ε adds up, δ adds up, and ρ adds up on its own (zCDP composes
//! additively in ρ). Basic composition is loose for many small charges (advanced composition or
//! a conversion of ρ into (ε, δ) would let more through), but it is what a data protection
//! officer can check by hand, and it never under-counts. ρ is not converted into ε: a node caps
//! each kind it allows (a cap of 0 allows none of that kind).
//!
//! The ledger (`budget_charges`, migration 0010) holds one charge per computation and client,
//! written in the transaction that starts the computation here (`runtime::admission`), so a
//! crash either keeps both or neither, and a retry or a restart finds the charge and adds none.
//! The check reads the ledger in that same write transaction, which admits submissions one at a
//! time: concurrent submissions cannot both fit in the last of a budget.

use crate::config::budget::Budget;
use crate::config::policy::Policy;
use crate::store::SpentRow;
use serde::Serialize;
use serde_json::{Value, json};

/// How far a sum of floating-point charges may pass a cap before it is refused: ten charges of
/// 0.1 add up to 0.9999999999999999 and three to 0.30000000000000004, which must fit a cap of 1
/// or 0.3. One part in 10^9 is far below any ε or δ a person writes down.
const ROUNDING: f64 = 1e-9;

/// What a computation costs (or what a client has spent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Cost {
    pub epsilon: f64,
    pub delta: f64,
    pub rho: f64,
}

impl Cost {
    /// The cost that a computation's (normalised) parameters declare in `dp`; none without it.
    /// A value that is no finite positive number counts as 0: such a `dp` is the engine's to
    /// refuse, and a cost is never a credit.
    pub fn of(parameters: &Value) -> Cost {
        let dp = parameters.get("dp");
        let number = |key: &str| {
            dp.and_then(|dp| dp.get(key))
                .and_then(Value::as_f64)
                .filter(|x| x.is_finite() && *x > 0.0)
                .unwrap_or(0.0)
        };
        Cost {
            epsilon: number("epsilon"),
            delta: number("delta"),
            rho: number("rho"),
        }
    }

    pub fn is_free(&self) -> bool {
        *self == Cost::default()
    }

    fn plus(self, other: Cost) -> Cost {
        Cost {
            epsilon: self.epsilon + other.epsilon,
            delta: self.delta + other.delta,
            rho: self.rho + other.rho,
        }
    }

    fn kinds(self) -> [(&'static str, f64); 3] {
        [("epsilon", self.epsilon), ("delta", self.delta), ("rho", self.rho)]
    }
}

/// What has been spent in the period: each client's, and the node's in all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spent {
    pub clients: Vec<(String, Cost, u64)>,
}

impl Spent {
    pub fn from_rows(rows: Vec<SpentRow>) -> Spent {
        Spent {
            clients: rows
                .into_iter()
                .map(|row| {
                    let cost = Cost {
                        epsilon: row.epsilon,
                        delta: row.delta,
                        rho: row.rho,
                    };
                    (row.client, cost, row.computations.max(0) as u64)
                })
                .collect(),
        }
    }

    /// Adds a charge not yet committed (one of the same batch).
    pub fn add(&mut self, client: &str, cost: Cost) {
        match self.clients.iter_mut().find(|(name, _, _)| name == client) {
            Some((_, spent, n)) => {
                *spent = spent.plus(cost);
                *n += 1;
            }
            None => self.clients.push((client.to_string(), cost, 1)),
        }
    }

    pub fn client(&self, client: &str) -> (Cost, u64) {
        self.clients
            .iter()
            .find(|(name, _, _)| name == client)
            .map_or((Cost::default(), 0), |(_, cost, n)| (*cost, *n))
    }

    pub fn node(&self) -> (Cost, u64) {
        self.clients
            .iter()
            .fold((Cost::default(), 0), |(sum, count), (_, cost, n)| {
                (sum.plus(*cost), count + n)
            })
    }
}

/// The start (ms) of the period that ends at `now`: charges since then count (all of them
/// without a period). A sliding window, not a calendar one: a calendar month would allow twice
/// the cap across its turn (all of it on the last day, all again on the first).
pub fn period_start(budget: Option<&Budget>, now: i64) -> i64 {
    budget
        .and_then(Budget::period_ms)
        .map_or(i64::MIN, |period| now.saturating_sub(period))
}

/// Whether `cost` fits: the first kind it would take past `caps`, with `spent` so far, as the
/// refusal's detail (for this node's client only). A free computation always fits.
pub fn check(caps: &Budget, spent: Cost, cost: Cost, whose: &str) -> Result<(), String> {
    if cost.is_free() {
        return Ok(());
    }
    for (((kind, spent), (_, cost)), cap) in spent.kinds().into_iter().zip(cost.kinds()).zip(caps.caps()) {
        if let Some(cap) = cap {
            if cost > 0.0 && spent + cost > cap * (1.0 + ROUNDING) {
                return Err(format!(
                    "{whose} budget has {kind} {} left of {cap} in its period; this computation costs {cost}",
                    (cap - spent).max(0.0)
                ));
            }
        }
    }
    Ok(())
}

/// What may still be spent under `caps` (`None` where a kind is not capped).
pub fn remaining(caps: &Budget, spent: Cost) -> [Option<f64>; 3] {
    // What is left within the rounding that `check` forgives is nothing (not 1.1e-16).
    let left = |cap: Option<f64>, spent: f64| {
        cap.map(|cap| {
            let left = cap - spent;
            if left <= cap * ROUNDING { 0.0 } else { left }
        })
    };
    [
        left(caps.epsilon, spent.epsilon),
        left(caps.delta, spent.delta),
        left(caps.rho, spent.rho),
    ]
}

/// What `GET /v1/budget` shows of `spent`: each client's spending, caps and what it may still
/// spend (under its own caps and the node's), for `only` one client or (`None`) for all clients
/// the policy or the ledger names; the node's total for all only (an admin's view).
pub fn report(policy: &Policy, spent: &Spent, only: Option<&str>) -> Value {
    let node_caps = policy.budget;
    let (node_spent, node_count) = spent.node();
    let node_left = node_caps.map(|caps| remaining(&caps, node_spent));
    let mut names: Vec<&str> = match only {
        Some(name) => vec![name],
        None => policy
            .clients
            .iter()
            .filter(|c| c.budget.is_some())
            .map(|c| c.name.as_str())
            .chain(spent.clients.iter().map(|(name, _, _)| name.as_str()))
            .collect(),
    };
    names.sort_unstable();
    names.dedup();
    let clients: Vec<Value> = names
        .into_iter()
        .map(|name| {
            let (cost, count) = spent.client(name);
            let caps = policy.client(name).and_then(|c| c.budget);
            let own = caps.map(|caps| remaining(&caps, cost));
            // What it may still spend: the lesser of its own and the node's remainders.
            let left = match (own, node_left) {
                (None, None) => None,
                (Some(left), None) | (None, Some(left)) => Some(left),
                (Some(own), Some(node)) => Some([0, 1, 2].map(|i| match (own[i], node[i]) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                })),
            };
            json!({
                "name": name,
                "spent": cost,
                "computations": count,
                "cap": caps.map(caps_json),
                "remaining": left.map(kinds_json),
            })
        })
        .collect();
    let node = json!({
        "spent": node_spent,
        "computations": node_count,
        "cap": node_caps.map(caps_json),
        "remaining": node_left.map(kinds_json),
    });
    json!({
        "period_days": policy.budget.and_then(|b| b.period_days),
        "node": if only.is_none() { node } else { Value::Null },
        "clients": clients,
    })
}

fn caps_json(caps: Budget) -> Value {
    kinds_json(caps.caps())
}

fn kinds_json([epsilon, delta, rho]: [Option<f64>; 3]) -> Value {
    json!({"epsilon": epsilon, "delta": delta, "rho": rho})
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cost(epsilon: f64, delta: f64, rho: f64) -> Cost {
        Cost { epsilon, delta, rho }
    }

    #[test]
    fn the_cost_is_the_dp_parameter() {
        assert_eq!(Cost::of(&json!({"dp": {"epsilon": 0.5}})), cost(0.5, 0.0, 0.0));
        assert_eq!(
            Cost::of(&json!({"dp": {"epsilon": 1, "delta": 1e-6, "collusion": 2, "bounds": [0, 1]}})),
            cost(1.0, 1e-6, 0.0)
        );
        assert_eq!(Cost::of(&json!({"dp": {"rho": 0.125}})), cost(0.0, 0.0, 0.125));
        // No dp, or none the engine would accept: no charge (the engine refuses the latter).
        for free in [
            json!(null),
            json!({}),
            json!({"digits_after": 3}),
            json!({"dp": null}),
            json!({"dp": {"epsilon": "1"}}),
            json!({"dp": {"epsilon": -1.0}}),
            json!({"dp": 3}),
        ] {
            assert!(Cost::of(&free).is_free(), "{free}");
        }
    }

    #[test]
    fn a_cost_fits_until_a_cap_is_reached() {
        let caps = Budget {
            epsilon: Some(1.0),
            delta: Some(1e-5),
            ..Budget::default()
        };
        assert!(check(&caps, cost(0.5, 0.0, 0.0), cost(0.5, 0.0, 0.0), "the").is_ok());
        let refused = check(&caps, cost(0.75, 0.0, 0.0), cost(0.5, 0.0, 0.0), "the node's").unwrap_err();
        assert!(refused.contains("epsilon 0.25 left of 1"), "{refused}");
        assert!(check(&caps, cost(0.0, 1e-5, 0.0), cost(0.1, 1e-6, 0.0), "the").is_err());
        // ρ is not capped here: it composes apart from ε.
        assert!(check(&caps, cost(1.0, 1e-5, 100.0), cost(0.0, 0.0, 5.0), "the").is_ok());
        // A zero cap allows none of its kind; a free computation passes even a spent budget.
        let no_rho = Budget { rho: Some(0.0), ..caps };
        assert!(check(&no_rho, Cost::default(), cost(0.0, 0.0, 0.01), "the").is_err());
        assert!(check(&no_rho, cost(9.0, 1.0, 9.0), Cost::default(), "the").is_ok());
        // Floating-point sums of exact budgets fit.
        let mut spent = Cost::default();
        let tenth = cost(0.1, 0.0, 0.0);
        for _ in 0..10 {
            check(&caps, spent, tenth, "the").unwrap();
            spent = spent.plus(tenth);
        }
        assert!(check(&caps, spent, tenth, "the").is_err());
        assert_eq!(remaining(&caps, spent), [Some(0.0), Some(1e-5), None]);
    }

    #[test]
    fn the_period_slides_back_from_now() {
        let day = 86_400_000;
        let monthly = Budget {
            period_days: Some(30),
            ..Budget::default()
        };
        assert_eq!(period_start(Some(&monthly), 100 * day), 70 * day);
        assert_eq!(period_start(Some(&Budget::default()), 100 * day), i64::MIN);
        assert_eq!(period_start(None, 5), i64::MIN);
    }

    #[test]
    fn the_report_shows_a_client_its_own_and_an_admin_all() {
        let policy: Policy = toml::from_str::<toml::Table>(
            "[policy.budget]\nepsilon = 10.0\nperiod_days = 30\n[[policy.clients]]\nname = \"analyst\"\nbudget = { epsilon = 3.0, rho = 1.0 }\n",
        )
        .map(|t| t["policy"].clone().try_into().unwrap())
        .unwrap();
        let mut spent = Spent::default();
        spent.add("analyst", cost(2.0, 0.0, 0.5));
        spent.add("steward", cost(7.5, 0.0, 0.0));
        let all = report(&policy, &spent, None);
        assert_eq!(all["period_days"], 30);
        assert_eq!(all["node"]["spent"]["epsilon"], 9.5);
        assert_eq!(all["node"]["remaining"]["epsilon"], 0.5);
        assert_eq!(all["node"]["computations"], 2);
        let names: Vec<&str> = all["clients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["analyst", "steward"]);
        // The analyst may spend 1 of its own 3, but the node has 0.5 left; ρ is its own cap.
        let analyst = &all["clients"][0];
        assert_eq!(analyst["remaining"], json!({"epsilon": 0.5, "delta": null, "rho": 0.5}));
        assert_eq!(analyst["cap"]["epsilon"], 3.0);
        assert_eq!(all["clients"][1]["cap"], Value::Null);
        let own = report(&policy, &spent, Some("steward"));
        assert_eq!(own["node"], Value::Null);
        assert_eq!(own["clients"].as_array().unwrap().len(), 1);
        assert_eq!(own["clients"][0]["spent"]["epsilon"], 7.5);
        let nobody = report(&Policy::default(), &Spent::default(), Some("local"));
        assert_eq!(nobody["clients"][0]["computations"], 0);
        assert_eq!(nobody["clients"][0]["remaining"], Value::Null);
    }

    #[test]
    fn spending_adds_up_per_client_and_for_the_node() {
        let mut spent = Spent::from_rows(vec![SpentRow {
            client: "analyst".into(),
            epsilon: 1.0,
            delta: 0.0,
            rho: 0.0,
            computations: 2,
        }]);
        spent.add("analyst", cost(0.5, 0.0, 0.0));
        spent.add("steward", cost(0.0, 0.0, 0.25));
        assert_eq!(spent.client("analyst"), (cost(1.5, 0.0, 0.0), 3));
        assert_eq!(spent.client("nobody"), (Cost::default(), 0));
        assert_eq!(spent.node(), (cost(1.5, 0.0, 0.25), 4));
    }
}
