//! A node's disclosure-control policy: `[policy]` in node.toml (README, "Disclosure control").
//!
//! The policy says which computations this node lends its data to: which microprotocols, with
//! which co-parties and helpers, with how many parties, on how few of its own records, and what
//! each API client may run. The runtime checks it where a computation starts here, before the
//! engine sends anything: when a local client submits (`runtime::admission`) and when a party
//! invites this node as a helper (`runtime::helper`). A refused computation fails here and at
//! every other party with the reason code `policy_refused`; the rule it broke is a [`Rule`], one
//! of a fixed set of tokens, so that naming it to the peers says nothing about the input. The
//! detail (how many records the input has, which party is not allowed) stays at this node.
//!
//! The privacy budget's caps are here too (`budget`, [`super::budget`]); the runtime checks them
//! against the ledger when it starts a computation (`crate::budget`), with the rule `budget`.
//!
//! Differential privacy (issue 23, item 2; the definition's `dp` parameter, `fsc_simon::dp`):
//! `require_dp` (protocols that must run with noise), `max_epsilon`, `max_delta`, `max_rho` (the
//! largest guarantee one computation may ask), the same per client, and `min_cell_count` (with
//! `dp`: this node's output suppresses noisy cells below it; without: tables are refused unless
//! their categories are given and this node's own non-zero cells all reach it). These live in
//! their own block of fields and their own check ([`Policy::check_dp`]).
//!
//! `min_total_samples` (the fewest records in all) cannot be checked by one node alone: it
//! asks the definition to carry the engine's check (`fsc_simon::sum::total`), which every party
//! runs alike, at a minimum no lower than this node's; this node refuses a definition without
//! it before anything is sent (`Policy::check_total`).

use super::budget::Budget;
use crate::error::Error;
use fsc_simon::Input;
use fsc_simon::dp::DpParameters;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;

/// `[policy]`: every key is optional; an absent key allows everything it would restrict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The microprotocols this node computes (absent: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microprotocols: Option<Vec<String>>,
    /// The co-parties this node computes with (absent: any roster member).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parties: Option<Vec<String>>,
    /// The helpers this node accepts for two-party products (absent: any roster member).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helpers: Option<Vec<String>>,
    /// The fewest parties of a computation (a helper is not a party).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_parties: Option<usize>,
    /// The fewest records this node contributes ([`fsc_simon::records::local`] says what a
    /// record is, per microprotocol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_local_samples: Option<u64>,
    /// The fewest records of all parties together: this node computes only definitions that
    /// set `min_total_samples` to at least this (README, "Disclosure control").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_total_samples: Option<u64>,
    /// The privacy budget of the node as a whole, and the period of every cap (absent: no
    /// node-wide cap, and charges never expire).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// What single API clients may run, beyond the node-wide rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<ClientPolicy>,

    // Differential privacy (issue 23, item 2): checked by `check_dp`.
    /// The microprotocols that must run with `dp` (those that take it: `fsc_simon::machine::WITH_DP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_dp: Option<Vec<String>>,
    /// The largest ε one computation may ask (pure, or with δ; a ρ request is held to it
    /// through `max_delta`, see [`DpCaps`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_epsilon: Option<f64>,
    /// The largest δ one computation may ask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delta: Option<f64>,
    /// The largest ρ (zCDP) one computation may ask, or that its (ε, δ) implies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rho: Option<f64>,
    /// The smallest cell of a frequency or contingency table this node releases (README,
    /// "Disclosure control": suppression with `dp`, refusal without).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_cell_count: Option<u64>,
}

/// `[[policy.clients]]`: what one API client may submit. A client not listed is held to the
/// node-wide rules only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientPolicy {
    /// The client's name, as in `[[clients]]` (`local` on a node that lists none).
    pub name: String,
    /// The microprotocols this client may submit (an empty list: none; absent: the node's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microprotocols: Option<Vec<String>>,
    /// This client's privacy budget in the node's period (absent: the node's caps only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,

    // Differential privacy for this client (issue 23, item 2): on top of the node-wide rules.
    /// The microprotocols this client may only run with `dp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_dp: Option<Vec<String>>,
    /// The largest ε this client may ask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_epsilon: Option<f64>,
    /// The largest ρ this client may ask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rho: Option<f64>,
}

/// The rule a refused computation broke: the one thing about a refusal, besides its code, that
/// the other parties are told. A fixed set, so a token from a peer is either one of these or
/// dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    Microprotocols,
    Parties,
    Helpers,
    MinParties,
    MinLocalSamples,
    MinTotalSamples,
    ClientMicroprotocols,
    Budget,
    // Differential privacy (issue 23, item 2).
    RequireDp,
    MaxEpsilon,
    MaxDelta,
    MaxRho,
    MinCellCount,
    ClientRequireDp,
    ClientMaxEpsilon,
    ClientMaxRho,
}

impl Rule {
    pub const ALL: [Rule; 16] = [
        Rule::Microprotocols,
        Rule::Parties,
        Rule::Helpers,
        Rule::MinParties,
        Rule::MinLocalSamples,
        Rule::MinTotalSamples,
        Rule::ClientMicroprotocols,
        Rule::Budget,
        Rule::RequireDp,
        Rule::MaxEpsilon,
        Rule::MaxDelta,
        Rule::MaxRho,
        Rule::MinCellCount,
        Rule::ClientRequireDp,
        Rule::ClientMaxEpsilon,
        Rule::ClientMaxRho,
    ];

    /// The rule's token, as node.toml names it (`clients.microprotocols` as one word).
    pub fn token(self) -> &'static str {
        match self {
            Rule::Microprotocols => "microprotocols",
            Rule::Parties => "parties",
            Rule::Helpers => "helpers",
            Rule::MinParties => "min_parties",
            Rule::MinLocalSamples => "min_local_samples",
            Rule::MinTotalSamples => "min_total_samples",
            Rule::ClientMicroprotocols => "client_microprotocols",
            Rule::Budget => "budget",
            Rule::RequireDp => "require_dp",
            Rule::MaxEpsilon => "max_epsilon",
            Rule::MaxDelta => "max_delta",
            Rule::MaxRho => "max_rho",
            Rule::MinCellCount => "min_cell_count",
            Rule::ClientRequireDp => "client_require_dp",
            Rule::ClientMaxEpsilon => "client_max_epsilon",
            Rule::ClientMaxRho => "client_max_rho",
        }
    }

    /// The rule a token names, if it is one of the set.
    pub fn from_token(token: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|rule| rule.token() == token)
    }
}

/// A computation the policy refuses: the rule, and the detail for this node's client (which may
/// quote its input's size: it never leaves this node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub rule: Rule,
    pub message: String,
}

/// One computation as the policy sees it at this node.
pub struct Proposal<'a> {
    pub microprotocol: &'a str,
    pub parties: &'a [String],
    /// The helper from outside the parties, if the computation has one.
    pub helper: Option<&'a str>,
    /// The definition's normalised parameters (what `min_cell_count` reads the given categories
    /// from).
    pub parameters: &'a Value,
    /// The definition's differential privacy, if any (validated by the engine).
    pub dp: Option<&'a DpParameters>,
    /// The definition's `min_total_samples`, if any (validated by the engine).
    pub min_total_samples: Option<u64>,
}

impl Policy {
    /// Whether the policy restricts nothing (no `[policy]` table).
    pub fn is_open(&self) -> bool {
        *self == Policy::default()
    }

    /// Whether this node, a party, computes `proposal` for `client` with `input` (already
    /// accepted by the engine) as party `index`.
    pub fn check_party(
        &self,
        me: &str,
        client: &str,
        proposal: &Proposal<'_>,
        index: usize,
        input: &Input,
    ) -> Result<(), Refusal> {
        self.check_common(me, proposal)?;
        self.check_dp(me, client, proposal, input)?;
        self.check_total(me, proposal)?;
        if let Some(allowed) = self.client(client).and_then(|c| c.microprotocols.as_ref()) {
            if !allowed.iter().any(|m| m == proposal.microprotocol) {
                return Err(refusal(
                    Rule::ClientMicroprotocols,
                    format!(
                        "the policy of {me} does not let client {client:?} run {} (policy.clients)",
                        proposal.microprotocol
                    ),
                ));
            }
        }
        if let Some(min) = self.min_local_samples {
            if let Some(samples) = input.records(proposal.microprotocol, index) {
                if samples < min {
                    return Err(refusal(
                        Rule::MinLocalSamples,
                        format!("this input has {samples} records; the policy of {me} wants at least {min}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `min_total_samples`: the definition's check of the records in all reaches this node's
    /// minimum. With `dp` the noise protects small totals instead (the engine refuses the check
    /// beside it: it would open the exact count the noise hides), so such a definition passes.
    fn check_total(&self, me: &str, proposal: &Proposal<'_>) -> Result<(), Refusal> {
        let Some(min) = self.min_total_samples.filter(|_| proposal.dp.is_none()) else {
            return Ok(());
        };
        let microprotocol = proposal.microprotocol;
        let message = match proposal.min_total_samples {
            Some(asked) if asked >= min => return Ok(()),
            _ if !fsc_simon::machine::with_total(microprotocol) => format!(
                "the policy of {me} wants at least {min} records in all (min_total_samples), which {microprotocol} cannot count"
            ),
            Some(asked) => format!("the definition's min_total_samples ({asked}) is below the policy of {me} ({min})"),
            None => format!(
                "the policy of {me} wants at least {min} records in all: the definition must set min_total_samples to {min} or more"
            ),
        };
        Err(refusal(Rule::MinTotalSamples, message))
    }

    /// The table of `client`, if the policy has one.
    pub fn client(&self, client: &str) -> Option<&ClientPolicy> {
        self.clients.iter().find(|c| c.name == client)
    }

    /// Whether this node helps `proposal` (it is its helper, with no input of its own).
    pub fn check_helper(&self, me: &str, proposal: &Proposal<'_>) -> Result<(), Refusal> {
        self.check_common(me, proposal)
    }

    fn check_common(&self, me: &str, proposal: &Proposal<'_>) -> Result<(), Refusal> {
        if let Some(allowed) = &self.microprotocols {
            if !allowed.iter().any(|m| m == proposal.microprotocol) {
                return Err(refusal(
                    Rule::Microprotocols,
                    format!("the policy of {me} does not allow {}", proposal.microprotocol),
                ));
            }
        }
        if let Some(allowed) = &self.parties {
            if let Some(other) = proposal
                .parties
                .iter()
                .find(|p| *p != me && !allowed.iter().any(|a| a == *p))
            {
                return Err(refusal(
                    Rule::Parties,
                    format!("the policy of {me} does not allow computing with {other}"),
                ));
            }
        }
        if let (Some(allowed), Some(helper)) = (&self.helpers, proposal.helper) {
            if helper != me && !allowed.iter().any(|a| a == helper) {
                return Err(refusal(
                    Rule::Helpers,
                    format!("the policy of {me} does not accept {helper} as a helper"),
                ));
            }
        }
        if let Some(min) = self.min_parties {
            if proposal.parties.len() < min {
                return Err(refusal(
                    Rule::MinParties,
                    format!(
                        "the computation has {} parties; the policy of {me} wants at least {min}",
                        proposal.parties.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks the policy's own consistency against the node's clients (`client_names`).
    pub fn validate(
        &self,
        client_names: &[&str],
        valid_party: impl Fn(&str) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let known = |name: &str, key: &str| {
            if fsc_simon::machine::AVAILABLE.contains(&name) {
                Ok(())
            } else {
                Err(Error::Config(format!(
                    "policy.{key}: {name:?} is not a microprotocol (available: {})",
                    fsc_simon::machine::AVAILABLE.join(", ")
                )))
            }
        };
        for name in self.microprotocols.iter().flatten() {
            known(name, "microprotocols")?;
        }
        for party in self.parties.iter().chain(&self.helpers).flatten() {
            valid_party(party)?;
        }
        if self.min_parties.is_some_and(|m| m < 2) {
            return Err(Error::Config("policy.min_parties must be at least 2".into()));
        }
        if self.min_local_samples == Some(0) {
            return Err(Error::Config("policy.min_local_samples must be at least 1".into()));
        }
        if self.min_total_samples == Some(0) {
            return Err(Error::Config("policy.min_total_samples must be at least 1".into()));
        }
        self.validate_dp()?;
        let mut seen = HashSet::new();
        for client in &self.clients {
            if !client_names.contains(&client.name.as_str()) {
                return Err(Error::Config(format!(
                    "policy.clients: {:?} is not a client of this node (its [[clients]]: {})",
                    client.name,
                    client_names.join(", ")
                )));
            }
            if !seen.insert(client.name.as_str()) {
                return Err(Error::Config(format!(
                    "policy.clients: {:?} is listed twice",
                    client.name
                )));
            }
            for name in client.microprotocols.iter().flatten() {
                known(name, "clients.microprotocols")?;
            }
            if let Some(caps) = &client.budget {
                caps.validate("policy.clients.budget", false)?;
            }
            client.validate_dp()?;
        }
        if let Some(budget) = &self.budget {
            budget.validate("policy.budget", true)?;
        }
        Ok(())
    }
}

fn refusal(rule: Rule, message: String) -> Refusal {
    Refusal { rule, message }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    fn parties(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// The `[policy]` table of a node.toml text (the DP rules' tests read theirs through it too).
    pub(in crate::config) fn parse(text: &str) -> Result<Policy, toml::de::Error> {
        #[derive(Deserialize)]
        struct File {
            policy: Policy,
        }
        toml::from_str::<File>(text).map(|f| f.policy)
    }

    #[test]
    fn the_table_parses_and_refuses_unknown_keys() {
        let policy = parse(
            r#"
            [policy]
            microprotocols = ["SecureSum", "StatisticsContingency"]
            parties = ["bob"]
            helpers = ["dave"]
            min_parties = 3
            min_local_samples = 10
            min_total_samples = 100
            [[policy.clients]]
            name = "analyst"
            microprotocols = ["SecureSum"]
            "#,
        )
        .unwrap();
        assert_eq!(policy.min_parties, Some(3));
        assert_eq!(policy.min_total_samples, Some(100));
        assert_eq!(
            policy.clients[0].microprotocols.as_deref(),
            Some(&["SecureSum".to_string()][..])
        );
        for bad in [
            "[policy]\nmin_samples = 3\n",
            "[policy]\nmin_total = 3\n",
            "[[policy.clients]]\nname = \"a\"\nmicroprotocols = []\nparameters = {}\n",
        ] {
            let error = parse(bad).unwrap_err().to_string();
            assert!(error.contains("unknown field"), "{bad}: {error}");
        }
        assert_eq!(parse("[policy]\n").unwrap(), Policy::default());
    }

    #[test]
    fn budgets_parse_node_wide_and_per_client() {
        let policy = parse(
            r#"
            [policy.budget]
            epsilon = 10.0
            delta = 1e-5
            rho = 2.0
            period_days = 30
            [[policy.clients]]
            name = "analyst"
            budget = { epsilon = 3.0 }
            "#,
        )
        .unwrap();
        let budget = policy.budget.unwrap();
        assert_eq!(
            (budget.epsilon, budget.delta, budget.period_days),
            (Some(10.0), Some(1e-5), Some(30))
        );
        let analyst = policy.client("analyst").unwrap();
        assert_eq!(analyst.budget.unwrap().epsilon, Some(3.0));
        // A budget alone restricts no microprotocol.
        assert_eq!(analyst.microprotocols, None);
        policy.validate(&["analyst"], |_| Ok(())).unwrap();
        let error = parse("[policy.budget]\nepsilon = 1\nepsilons = 2\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field"), "{error}");
        for (bad, key) in [
            ("budget = { rho = -1 }", "policy.clients.budget.rho"),
            (
                "budget = { epsilon = 1, period_days = 3 }",
                "policy.clients.budget.period_days",
            ),
        ] {
            let policy = parse(&format!("[[policy.clients]]\nname = \"analyst\"\n{bad}\n")).unwrap();
            let error = policy.validate(&["analyst"], |_| Ok(())).unwrap_err().to_string();
            assert!(error.contains(key), "{error}");
        }
    }

    #[test]
    fn validation_names_the_key() {
        let ok = |_: &str| Ok(());
        let policy = |text: &str| parse(text).unwrap();
        let error = |p: Policy| p.validate(&["analyst"], ok).unwrap_err().to_string();
        assert!(error(policy("[policy]\nmicroprotocols = [\"SecureSun\"]\n")).contains("policy.microprotocols"));
        assert!(error(policy("[policy]\nmin_parties = 1\n")).contains("min_parties"));
        assert!(error(policy("[policy]\nmin_local_samples = 0\n")).contains("min_local_samples"));
        assert!(error(policy("[policy]\nmin_total_samples = 0\n")).contains("policy.min_total_samples"));
        assert!(parse("[policy]\nmin_total_samples = -1\n").is_err());
        assert!(error(policy("[[policy.clients]]\nname = \"nobody\"\nmicroprotocols = []\n")).contains("not a client"));
        policy("[[policy.clients]]\nname = \"analyst\"\nmicroprotocols = [\"SecureSum\"]\n")
            .validate(&["analyst"], ok)
            .unwrap();
    }

    #[test]
    fn min_total_samples_wants_the_definitions_check_at_its_minimum() {
        let parties = parties(&["alice", "bob", "carol"]);
        let policy = parse("[policy]\nmin_total_samples = 100\n").unwrap();
        let check = |microprotocol, min_total_samples, dp| {
            let proposal = Proposal {
                microprotocol,
                parties: &parties,
                helper: None,
                parameters: &Value::Null,
                dp,
                min_total_samples,
            };
            policy.check_party("alice", "analyst", &proposal, 0, &json!([1, 2]).into())
        };
        assert_eq!(check("SecureSum", Some(100), None), Ok(()));
        assert_eq!(check("StatisticsUnivariate", Some(250), None), Ok(()));
        for (microprotocol, asked, says) in [
            ("SecureSum", None, "must set min_total_samples to 100 or more"),
            ("SecureSum", Some(99), "(99) is below the policy of alice (100)"),
            ("SetIntersection", None, "SetIntersection cannot count"),
        ] {
            let refusal = check(microprotocol, asked, None).unwrap_err();
            assert_eq!(refusal.rule, Rule::MinTotalSamples);
            assert!(refusal.message.contains(says), "{}", refusal.message);
        }
        // With dp, the noise protects small totals (the engine refuses both together).
        let dp: DpParameters = serde_json::from_value(json!({"epsilon": 1})).unwrap();
        assert_eq!(check("StatisticsFrequency", None, Some(&dp)), Ok(()));
        // A helper holds no records: the rule is a party's.
        let proposal = Proposal {
            microprotocol: "SecureMatrixMultiplication",
            parties: &parties[..2],
            helper: Some("carol"),
            parameters: &Value::Null,
            dp: None,
            min_total_samples: None,
        };
        assert_eq!(policy.check_helper("carol", &proposal), Ok(()));
    }

    #[test]
    fn each_rule_refuses_what_it_names() {
        let sum = |names: &[&str]| parties(names);
        let three = sum(&["alice", "bob", "carol"]);
        let proposal = |microprotocol, parties| Proposal {
            microprotocol,
            parties,
            helper: None,
            parameters: &Value::Null,
            dp: None,
            min_total_samples: None,
        };
        let rule = |policy: &Policy, p: &Proposal<'_>, input: Value| {
            policy
                .check_party("alice", "analyst", p, 0, &input.into())
                .err()
                .map(|r| r.rule)
        };
        let open = Policy::default();
        assert_eq!(rule(&open, &proposal("SecureSum", &three), json!(1)), None);

        let only_sums = Policy {
            microprotocols: Some(vec!["SecureSum".into()]),
            ..Policy::default()
        };
        assert_eq!(rule(&only_sums, &proposal("SecureSum", &three), json!(1)), None);
        assert_eq!(
            rule(&only_sums, &proposal("SecureMedian", &three), json!(1)),
            Some(Rule::Microprotocols)
        );

        let with_bob = Policy {
            parties: Some(vec!["bob".into()]),
            ..Policy::default()
        };
        let two = sum(&["alice", "bob"]);
        assert_eq!(rule(&with_bob, &proposal("SecureSum", &two), json!(1)), None);
        assert_eq!(
            rule(&with_bob, &proposal("SecureSum", &three), json!(1)),
            Some(Rule::Parties)
        );

        let helpers = Policy {
            helpers: Some(vec!["dave".into()]),
            ..Policy::default()
        };
        let product = |helper| Proposal {
            microprotocol: "SecureMatrixMultiplication",
            parties: &two,
            helper: Some(helper),
            parameters: &Value::Null,
            dp: None,
            min_total_samples: None,
        };
        assert_eq!(rule(&helpers, &product("dave"), json!([[1]])), None);
        assert_eq!(rule(&helpers, &product("carol"), json!([[1]])), Some(Rule::Helpers));
        // As the helper itself: its own name needs no listing, the parties' do.
        let carol = Policy {
            helpers: Some(vec![]),
            parties: Some(vec!["alice".into()]),
            ..Policy::default()
        };
        assert_eq!(
            carol.check_helper("carol", &product("carol")).unwrap_err().rule,
            Rule::Parties
        );

        let three_or_more = Policy {
            min_parties: Some(3),
            ..Policy::default()
        };
        assert_eq!(rule(&three_or_more, &proposal("SecureSum", &three), json!(1)), None);
        assert_eq!(
            rule(&three_or_more, &proposal("SecureSum", &two), json!(1)),
            Some(Rule::MinParties)
        );

        let ten = Policy {
            min_local_samples: Some(3),
            ..Policy::default()
        };
        assert_eq!(rule(&ten, &proposal("SecureSum", &three), json!([1, [2, 3]])), None);
        let refused = ten
            .check_party(
                "alice",
                "analyst",
                &proposal("SecureSum", &three),
                0,
                &json!([1, 2]).into(),
            )
            .unwrap_err();
        assert_eq!(refused.rule, Rule::MinLocalSamples);
        assert!(refused.message.contains("2 records"), "{}", refused.message);

        let analyst = Policy {
            clients: vec![ClientPolicy {
                name: "analyst".into(),
                microprotocols: Some(vec!["SecureSum".into()]),
                ..ClientPolicy::default()
            }],
            ..Policy::default()
        };
        assert_eq!(rule(&analyst, &proposal("SecureSum", &three), json!(1)), None);
        assert_eq!(
            rule(&analyst, &proposal("StatisticsFrequency", &three), json!(["a"])),
            Some(Rule::ClientMicroprotocols)
        );
        // Another client is held to the node-wide rules only.
        assert!(
            analyst
                .check_party(
                    "alice",
                    "steward",
                    &proposal("StatisticsFrequency", &three),
                    0,
                    &json!(["a"]).into()
                )
                .is_ok()
        );
    }
}
