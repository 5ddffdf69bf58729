//! Why a computation failed, as this node records it and as the parties tell each other.
//!
//! A failure found here has a reason code and a detail ([`AbortReason`]). The detail may quote
//! an input (a category that is not among the parameters, a number out of range), so it stays at
//! this node: the submitting client is answered with it, and the store and the log keep it cut to
//! [`MAX_DETAIL`] bytes. Peers are told only the code and the party at fault ([`Announced`]), and
//! write their own fixed text for it ([`describe`]); whatever else a peer's abort carried (an
//! older node's text, a dishonest node's) is not kept. So no byte of an input reaches another
//! party through a failure, whoever sends it.

use crate::config::policy::Rule;
use serde::{Deserialize, Serialize};

/// The longest detail a node keeps of a failure (store, operator page, log).
pub const MAX_DETAIL: usize = 512;

/// The reason codes fsc knows: the labels of the failure metric. A code outside the list (from a
/// newer peer) is kept if it is a plain token, and counted as `other`.
pub const REASONS: &[&str] = &[
    "aborted",
    "cancelled",
    "dataset_forbidden",
    "dataset_unavailable",
    "deadline_exceeded",
    "declined",
    "definition_mismatch",
    "helper_busy",
    "helper_refused",
    "internal",
    "invalid_input",
    "invalid_parameters",
    "invalid_parties",
    "no_helper",
    "no_result",
    "policy_refused",
    "protocol_violation",
    "revealing_shapes",
    "stalled",
    "superseded",
    "too_large",
    "unknown_microprotocol",
];

/// A failure as the node that found it records it: its code and its detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbortReason {
    pub code: String,
    pub message: String,
}

/// What an abort tells the other parties: the code, and the party at fault where it is not the
/// sender (the peer whose message broke the protocol). Signed by the sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announced {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub culprit: Option<String>,
    /// For `policy_refused`: the policy rule the sender's node applied, a token of the fixed set
    /// [`Rule`] (anything else is dropped). Authenticated by the envelope, not covered by the
    /// abort's signature (whose bytes older nodes check without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

impl Announced {
    /// What a peer's abort says, as this node keeps it: a code that is no plain token (or too
    /// long) becomes `aborted`.
    pub fn sanitised(self) -> Announced {
        let token = |s: &str| (1..=40).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        Announced {
            code: if token(&self.code) { self.code } else { "aborted".into() },
            culprit: self.culprit.filter(|c| token_like_party(c)),
            rule: self
                .rule
                .and_then(|r| Rule::from_token(&r))
                .map(|r| r.token().to_string()),
        }
    }
}

impl Announced {
    /// The failure a peer's abort stands for here: the party at fault (the culprit it names, if
    /// a party of the computation, else the sender), this node's own text for the code, and the
    /// policy rule, if one of the fixed set.
    pub fn received(self, sender: &str, parties: &[String]) -> (AbortReason, String, Option<Rule>) {
        let Announced { code, culprit, rule } = self.sanitised();
        let rule = rule.and_then(|r| Rule::from_token(&r));
        let party = culprit
            .filter(|c| parties.iter().any(|p| p == c))
            .unwrap_or_else(|| sender.to_string());
        let mut message = describe(&code, &party);
        if let Some(rule) = rule {
            message.push_str(&format!(" (rule {})", rule.token()));
        }
        if party != sender {
            message.push_str(&format!(" (reported by {sender})"));
        }
        (AbortReason { code, message }, party, rule)
    }
}

fn token_like_party(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The fixed text of a failure with `code` caused by `party`, as every node writes it.
pub fn describe(code: &str, party: &str) -> String {
    match code {
        "invalid_input" => format!("{party}'s node refused its client's input"),
        "invalid_parameters" => format!("{party}'s node refused the parameters"),
        "unknown_microprotocol" => format!("{party}'s node does not run this microprotocol"),
        "invalid_parties" => format!("{party}'s node refused the list of parties"),
        "no_helper" => format!("{party}'s node found no helper for this two-party computation"),
        "protocol_violation" => format!("{party} sent a message that breaks the protocol"),
        "no_result" => format!(
            "{party} found that the computation has no result (the inputs admit none: no values, a rank \
             beyond them, parties that disagree on a rank or on shapes)"
        ),
        "definition_mismatch" => {
            format!("{party} defines this computation differently (microprotocol, parties or parameters differ)")
        }
        "deadline_exceeded" => format!("{party} had not joined when the deadline passed"),
        "stalled" => {
            format!("{party} gave up waiting: the computation stalled past its deadline and grace (stall_grace_s)")
        }
        "cancelled" => format!("a client of {party} cancelled the computation"),
        "declined" => format!("a client of {party} declined the computation"),
        "superseded" => format!("a later compute at {party} with the same network uuid superseded it"),
        "helper_refused" => format!("the helper {party} refused to serve the computation"),
        "helper_busy" => format!("the helper {party} runs as many computations as it takes; retry later"),
        "too_large" => format!(
            "the computation would be larger than {party}'s node takes (an output beyond max_output_cells, or a \
             state beyond what its store holds)"
        ),
        "revealing_shapes" => {
            format!("{party}'s node refused shapes whose product would reveal its input (see allow_revealing_shapes)")
        }
        "policy_refused" => format!("{party}'s node refused the computation under its policy"),
        "dataset_forbidden" => format!("{party}'s node refused its client the dataset its input names"),
        "dataset_unavailable" => format!("{party}'s node could not read the dataset its input names"),
        "internal" => format!("an internal error at {party}'s node"),
        other => format!("{party} gave up on the computation ({other})"),
    }
}

/// `detail` cut to [`MAX_DETAIL`] bytes (at a character boundary), saying how long it was.
pub fn truncated(detail: &str) -> String {
    cut(detail, MAX_DETAIL)
}

/// `text` cut to `max` bytes (at a character boundary), saying how long it was.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_keeps_only_a_plain_code_and_a_party_id() {
        let odd = Announced {
            code: "x\" onload=\"alert(1)".into(),
            culprit: Some("MARKER 12345".into()),
            rule: Some("min_local_samples: 3 records".into()),
        }
        .sanitised();
        assert_eq!(odd.code, "aborted");
        assert_eq!(odd.culprit, None);
        assert_eq!(odd.rule, None);
        let plain = Announced {
            code: "policy_refused".into(),
            culprit: Some("carol".into()),
            rule: Some("min_local_samples".into()),
        };
        assert_eq!(plain.clone().sanitised(), plain);
        let (reason, party, rule) = plain.received("bob", &["bob".into(), "carol".into()]);
        assert_eq!((party.as_str(), rule), ("carol", Some(Rule::MinLocalSamples)));
        assert_eq!(
            reason.message,
            "carol's node refused the computation under its policy (rule min_local_samples) (reported by bob)"
        );
        assert_eq!(
            describe("no_such_code", "bob"),
            "bob gave up on the computation (no_such_code)"
        );
    }

    #[test]
    fn details_are_cut_at_a_character_boundary() {
        assert_eq!(truncated("short"), "short");
        let long = "é".repeat(MAX_DETAIL);
        let cut = truncated(&long);
        assert!(cut.len() < MAX_DETAIL + 40, "{}", cut.len());
        assert!(cut.ends_with(&format!("… ({} bytes in all)", long.len())));
    }
}
