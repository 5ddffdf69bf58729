//! The differential-privacy rules of a node's `[policy]` (issue 23, item 2): `require_dp`, the
//! caps `max_epsilon`, `max_delta`, `max_rho` (node-wide and per client) and `min_cell_count`.
//! Their fields are declared in [`crate::config::policy`]; what they mean is checked here, apart
//! from the other rules, before the engine sends anything (as every rule is).
//!
//! What `min_cell_count` protects. With `dp`, it is post-processing of a differentially private
//! table (no privacy cost, no extra guarantee): this node's output shows noisy cells below it as
//! null and lists them under `suppressed`. Without `dp`, this node refuses a table unless its
//! categories are given as parameters (so the table's shape says nothing about anyone's data) and
//! each of its own cells is either empty or holds at least `min_cell_count` records (DataSHIELD's
//! rule for tables: an empty cell is allowed, a cell of 1 to min − 1 is not). That keeps this
//! node's own small groups out of any table it joins; it does NOT keep a *total* cell from being
//! small (another party's 2 plus this party's 0), nor stop differencing attacks over several
//! tables (two tables that differ by one record reveal it), nor protect the other parties'
//! records: each node guards its own. Only `dp` bounds what tables reveal in combination.

use crate::config::policy::{ClientPolicy, Policy, Proposal, Refusal, Rule};
use crate::error::Error;
use fsc_simon::Input;
use fsc_simon::dp::DpParameters;
use fsc_simon::machine::WITH_DP;
use fsc_simon::statistics::categorical::category;
use serde_json::Value;
use std::collections::HashMap;

/// Caps on one computation's guarantee, and the rules that name them. A request is held to the
/// caps of its own kind: ε (and δ) for an ε request; ρ for a ρ request and for the ρ an (ε, δ)
/// request is run at. A ρ request against an ε cap is compared through δ = `max_delta`
/// (ρ-zCDP gives (ρ + 2√(ρ·ln(1/δ)), δ)-DP); with no `max_delta` it has no ε to compare and is
/// refused.
pub struct DpCaps {
    pub max_epsilon: Option<(f64, Rule)>,
    pub max_delta: Option<(f64, Rule)>,
    pub max_rho: Option<(f64, Rule)>,
}

impl Policy {
    fn caps(&self) -> DpCaps {
        DpCaps {
            max_epsilon: self.max_epsilon.map(|m| (m, Rule::MaxEpsilon)),
            max_delta: self.max_delta.map(|m| (m, Rule::MaxDelta)),
            max_rho: self.max_rho.map(|m| (m, Rule::MaxRho)),
        }
    }

    /// The differential-privacy rules for party `client`'s `proposal` with this node's `input`.
    pub fn check_dp(&self, me: &str, client: &str, proposal: &Proposal<'_>, input: &Input) -> Result<(), Refusal> {
        let (microprotocol, dp) = (proposal.microprotocol, proposal.dp);
        let required = |list: &Option<Vec<String>>| list.iter().flatten().any(|m| m == microprotocol);
        if dp.is_none() && required(&self.require_dp) {
            return Err(Refusal {
                rule: Rule::RequireDp,
                message: format!("the policy of {me} runs {microprotocol} only with dp (require_dp)"),
            });
        }
        if let Some(dp) = dp {
            check_caps(me, dp, &self.caps(), self.max_delta)?;
        }
        if let Some(allowed) = self.clients.iter().find(|c| c.name == client) {
            if dp.is_none() && required(&allowed.require_dp) {
                return Err(Refusal {
                    rule: Rule::ClientRequireDp,
                    message: format!(
                        "the policy of {me} lets client {client:?} run {microprotocol} only with dp (policy.clients)"
                    ),
                });
            }
            if let Some(dp) = dp {
                check_caps(me, dp, &allowed.caps(), self.max_delta)?;
            }
        }
        // A list of doubles is no table: it has no cells. Pairs are checked as their JSON list.
        if let (Some(min), None) = (self.min_cell_count, dp)
            && !matches!(input, Input::Doubles(_))
        {
            check_small_cells(me, min, proposal, &input.json())?;
        }
        Ok(())
    }

    /// The consistency of the differential-privacy rules.
    pub(crate) fn validate_dp(&self) -> Result<(), Error> {
        validate_caps("", &self.require_dp, &self.caps())?;
        if self.min_cell_count == Some(0) {
            return Err(Error::Config("policy.min_cell_count must be at least 1".into()));
        }
        if self.max_delta.is_some_and(|d| d >= 1.0) {
            return Err(Error::Config("policy.max_delta must be below 1".into()));
        }
        Ok(())
    }
}

impl ClientPolicy {
    /// The consistency of this client's differential-privacy rules.
    pub(crate) fn validate_dp(&self) -> Result<(), Error> {
        validate_caps("clients.", &self.require_dp, &self.caps())
    }

    fn caps(&self) -> DpCaps {
        DpCaps {
            max_epsilon: self.max_epsilon.map(|m| (m, Rule::ClientMaxEpsilon)),
            max_delta: None,
            max_rho: self.max_rho.map(|m| (m, Rule::ClientMaxRho)),
        }
    }
}

/// `require_dp` names protocols that take `dp`; caps are positive finite numbers.
fn validate_caps(prefix: &str, require_dp: &Option<Vec<String>>, caps: &DpCaps) -> Result<(), Error> {
    for name in require_dp.iter().flatten() {
        if !WITH_DP.contains(&name.as_str()) {
            return Err(Error::Config(format!(
                "policy.{prefix}require_dp: {name:?} does not take dp (those that do: {})",
                WITH_DP.join(", ")
            )));
        }
    }
    for (cap, _) in [&caps.max_epsilon, &caps.max_delta, &caps.max_rho]
        .into_iter()
        .flatten()
    {
        if !(cap.is_finite() && *cap > 0.0) {
            return Err(Error::Config(format!(
                "policy.{prefix}max_epsilon, max_delta and max_rho must be positive finite numbers, got {cap}"
            )));
        }
    }
    Ok(())
}

fn check_caps(me: &str, dp: &DpParameters, caps: &DpCaps, max_delta: Option<f64>) -> Result<(), Refusal> {
    let over = |what: &str, value: f64, (cap, rule): (f64, Rule)| Refusal {
        rule,
        message: format!(
            "dp asks {what} = {value}; the policy of {me} allows at most {cap} ({})",
            rule.token()
        ),
    };
    if let (Some(epsilon), Some(cap)) = (dp.epsilon, caps.max_epsilon) {
        if epsilon > cap.0 {
            return Err(over("epsilon", epsilon, cap));
        }
    }
    if let (Some(delta), Some(cap)) = (dp.delta, caps.max_delta) {
        if delta > cap.0 {
            return Err(over("delta", delta, cap));
        }
    }
    if let (Some(rho), Some(cap)) = (dp.rho(), caps.max_rho) {
        if rho > cap.0 {
            return Err(over("rho", rho, cap));
        }
    }
    if let (Some(rho), None, Some(cap)) = (dp.rho, dp.epsilon, caps.max_epsilon) {
        let Some(delta) = max_delta else {
            return Err(Refusal {
                rule: cap.1,
                message: format!(
                    "dp asks rho = {rho}, which has no pure epsilon; the policy of {me} caps epsilon and sets no max_delta to compare at"
                ),
            });
        };
        let epsilon = rho + 2.0 * (rho * (1.0 / delta).ln()).sqrt();
        if epsilon > cap.0 {
            return Err(over("rho, at max_delta an epsilon", epsilon, cap));
        }
    }
    Ok(())
}

/// `min_cell_count` without `dp`: the table's categories must be given, and this node's own
/// cells be empty or reach the minimum.
fn check_small_cells(me: &str, min: u64, proposal: &Proposal<'_>, input: &Value) -> Result<(), Refusal> {
    let refuse = |message: String| Refusal {
        rule: Rule::MinCellCount,
        message,
    };
    let given = |key: &str| proposal.parameters.get(key).is_some_and(|v| !v.is_null());
    let records: Vec<Vec<&Value>> = match proposal.microprotocol {
        "StatisticsFrequency" if given("categories") => match input {
            Value::Array(items) => items.iter().map(|item| vec![item]).collect(),
            single => vec![vec![single]],
        },
        "StatisticsContingency" if given("rows") && given("columns") => match input {
            Value::Array(pairs) => pairs
                .iter()
                .map(|pair| pair.as_array().map(|p| p.iter().collect()).unwrap_or_default())
                .collect(),
            _ => Vec::new(),
        },
        "StatisticsFrequency" | "StatisticsContingency" => {
            return Err(refuse(format!(
                "the policy of {me} sets min_cell_count: without dp, a table's categories must be given as parameters"
            )));
        }
        "StatisticsContingencyVertical" => {
            return Err(refuse(format!(
                "the policy of {me} sets min_cell_count: a vertical contingency table's cells join both parties' columns, so this node cannot check them; it runs only with dp"
            )));
        }
        _ => return Ok(()),
    };
    let mut cells: HashMap<Vec<String>, u64> = HashMap::new();
    for record in records {
        // The engine has accepted this input: every category is a scalar.
        let key = record
            .into_iter()
            .map(|v| category(v).map(|c| c.text).unwrap_or_default())
            .collect();
        *cells.entry(key).or_default() += 1;
    }
    if let Some(small) = cells.values().filter(|&&c| c < min).min() {
        return Err(refuse(format!(
            "this input has a cell of {small} records; the policy of {me} releases no table with a cell below {min} (min_cell_count) without dp"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(text: &str) -> Policy {
        crate::config::policy::tests::parse(text).unwrap()
    }

    fn dp(value: Value) -> DpParameters {
        serde_json::from_value::<DpParameters>(value)
            .unwrap()
            .validate(3, false)
            .unwrap()
    }

    /// The rule `policy` applies to `microprotocol` with `parameters` (their `dp`) for `client`.
    fn rule(policy: &Policy, client: &str, microprotocol: &str, parameters: Value, input: Value) -> Option<Rule> {
        let parties: Vec<String> = ["alice", "bob", "carol"].map(String::from).to_vec();
        let dp = parameters.get("dp").map(|d| dp(d.clone()));
        let proposal = Proposal {
            microprotocol,
            parties: &parties,
            helper: None,
            parameters: &parameters,
            dp: dp.as_ref(),
            min_total_samples: None,
        };
        let check = |input: &Input| {
            policy
                .check_party("alice", client, &proposal, 0, input)
                .err()
                .map(|r| r.rule)
        };
        let rule = check(&input.clone().into());
        // Pairs read from a dataset are checked as their JSON list.
        if let Some(list) = input.as_array().filter(|_| microprotocol == "StatisticsContingency") {
            let mut pairs = fsc_simon::input::Pairs::default();
            for pair in list {
                pairs.push(pair[0].clone(), pair[1].clone());
            }
            assert_eq!(check(&Input::Pairs(pairs)), rule, "{input}");
        }
        rule
    }

    #[test]
    fn the_dp_rules_parse_validate_and_name_their_tokens() {
        let p = policy(
            r#"
            [policy]
            require_dp = ["StatisticsContingency", "StatisticsFrequency"]
            max_epsilon = 1.0
            max_delta = 1e-6
            max_rho = 0.5
            min_cell_count = 5
            [[policy.clients]]
            name = "analyst"
            microprotocols = ["StatisticsContingency"]
            require_dp = ["StatisticsContingency"]
            max_epsilon = 0.5
            max_rho = 0.1
            "#,
        );
        p.validate(&["analyst"], |_| Ok(())).unwrap();
        let invalid = |text: &str| policy(text).validate(&[], |_| Ok(())).unwrap_err().to_string();
        assert!(invalid("[policy]\nrequire_dp = [\"SecureMedian\"]\n").contains("does not take dp"));
        assert!(invalid("[policy]\nmax_epsilon = 0.0\n").contains("positive finite"));
        assert!(invalid("[policy]\nmax_rho = -1\n").contains("positive finite"));
        assert!(invalid("[policy]\nmax_delta = 1.0\n").contains("below 1"));
        assert!(invalid("[policy]\nmin_cell_count = 0\n").contains("at least 1"));
        for rule in Rule::ALL {
            assert_eq!(Rule::from_token(rule.token()), Some(rule));
        }
    }

    #[test]
    fn require_dp_and_the_caps_refuse_what_they_name() {
        let table = |dp: Option<Value>| {
            let mut parameters = json!({"rows": ["a"], "columns": ["b"]});
            if let Some(dp) = dp {
                parameters["dp"] = dp;
            }
            parameters
        };
        let input = json!([["a", "b"]]);
        let p = policy("[policy]\nrequire_dp = [\"StatisticsContingency\"]\nmax_epsilon = 1.0\nmax_rho = 0.5\n");
        let check = |dp| rule(&p, "local", "StatisticsContingency", table(dp), input.clone());
        assert_eq!(check(None), Some(Rule::RequireDp));
        assert_eq!(check(Some(json!({"epsilon": 1.0}))), None);
        assert_eq!(check(Some(json!({"epsilon": 1.5}))), Some(Rule::MaxEpsilon));
        assert_eq!(
            check(Some(json!({"rho": 0.5}))),
            Some(Rule::MaxEpsilon),
            "a ρ with no max_delta"
        );
        assert_eq!(check(Some(json!({"epsilon": 1.0, "delta": 1e-3}))), None);
        // Another protocol is not held to require_dp.
        assert_eq!(rule(&p, "local", "SecureSum", json!({}), json!(1)), None);

        let p = policy("[policy]\nmax_rho = 0.01\nmax_delta = 1e-6\nmax_epsilon = 1.0\n");
        let check = |dp| rule(&p, "local", "StatisticsContingency", table(Some(dp)), input.clone());
        assert_eq!(check(json!({"rho": 0.02})), Some(Rule::MaxRho));
        assert_eq!(check(json!({"rho": 0.01})), None, "ε at δ = 1e-6 is 0.75");
        assert_eq!(check(json!({"epsilon": 1.0, "delta": 1e-5})), Some(Rule::MaxDelta));
        assert_eq!(
            check(json!({"epsilon": 1.0, "delta": 1e-7})),
            Some(Rule::MaxRho),
            "its ρ is 0.0146"
        );

        let p = policy(
            "[[policy.clients]]\nname = \"analyst\"\nmicroprotocols = [\"StatisticsContingency\"]\nrequire_dp = [\"StatisticsContingency\"]\nmax_epsilon = 0.5\n",
        );
        let check = |client, dp| rule(&p, client, "StatisticsContingency", table(dp), input.clone());
        assert_eq!(check("analyst", None), Some(Rule::ClientRequireDp));
        assert_eq!(
            check("analyst", Some(json!({"epsilon": 1.0}))),
            Some(Rule::ClientMaxEpsilon)
        );
        assert_eq!(check("analyst", Some(json!({"epsilon": 0.5}))), None);
        assert_eq!(check("steward", None), None);
    }

    #[test]
    fn min_cell_count_without_dp_wants_given_categories_and_no_small_own_cell() {
        let p = policy("[policy]\nmin_cell_count = 2\n");
        let freq = |parameters, input| rule(&p, "local", "StatisticsFrequency", parameters, input);
        assert_eq!(freq(json!({}), json!(["a", "a"])), Some(Rule::MinCellCount));
        assert_eq!(
            freq(json!({"categories": ["a", "b"]}), json!(["a", "a"])),
            None,
            "an empty cell passes"
        );
        assert_eq!(
            freq(json!({"categories": ["a", "b"]}), json!(["a", "a", "b"])),
            Some(Rule::MinCellCount)
        );
        // 1 and 1.0 are two categories, as the engine counts them.
        assert_eq!(
            freq(json!({"categories": [1, 1.0]}), json!([1, 1.0])),
            Some(Rule::MinCellCount)
        );
        let table = |parameters, input| rule(&p, "local", "StatisticsContingency", parameters, input);
        let given = json!({"rows": ["a"], "columns": [0, 1]});
        assert_eq!(table(given.clone(), json!([["a", 0], ["a", 0]])), None);
        assert_eq!(
            table(given.clone(), json!([["a", 0], ["a", 0], ["a", 1]])),
            Some(Rule::MinCellCount)
        );
        assert_eq!(
            table(json!({"rows": ["a"]}), json!([["a", 0], ["a", 0]])),
            Some(Rule::MinCellCount)
        );
        // With dp, the cells are suppressed in the output instead: the node runs it.
        let noisy = json!({"rows": ["a"], "columns": [0, 1], "dp": {"epsilon": 1.0}});
        assert_eq!(table(noisy, json!([["a", 0], ["a", 1]])), None);
        assert_eq!(
            rule(&p, "local", "StatisticsContingencyVertical", json!({}), json!([])),
            Some(Rule::MinCellCount)
        );
        assert_eq!(rule(&p, "local", "SecureSum", json!({}), json!(1)), None);
    }
}
