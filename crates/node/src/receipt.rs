//! Receipts: every party's signature over how a computation ended, checkable offline against the
//! roster alone (issue 24).
//!
//! When a computation ends at a node (succeeded or failed), the node signs a [`Statement`]: the
//! computation id, the definition digest (`definition::definition_digest`, which covers the
//! microprotocol, the parties and the parameters), the outcome, and a digest of the canonical
//! output or of the failure's reason code. The signature is stored in the transaction that
//! stores the outcome, and sent to every other party in a `receipt` message from the outbox
//! (one per peer for everything that ended in one batch, see [`Entry`]), published after the
//! result is released here (`runtime`). Peers' signatures are stored as they arrive and checked
//! against the roster when a receipt is read: `GET /v1/computations/{id}/receipt` assembles a
//! [`Receipt`] of the ones that hold; `fsc audit verify-receipt` checks one with
//! [`Receipt::verify`].
//!
//! A failure is signed by its reason code only: the detail is this node's own text (it may quote
//! an input), and the party at fault is named differently by the party that found it and the
//! others. Parties that end with different outputs or outcomes sign different statements: the
//! receipt shows them as disagreeing, which is how an operator sees that parties ended apart.
//!
//! This module owns the statement's canonical bytes, the digests and the checks; it neither
//! stores nor sends anything.

use crate::audit::hex;
use crate::config::roster::Roster;
use crate::definition::definition_digest;
use crate::error::Error;
use crate::keys::{self, NodeKeys};
use crate::store::{self, ComputationRow, ReceiptRow};
use ring::digest;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// How a computation ended, as a receipt states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Succeeded,
    Failed,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Succeeded => store::SUCCEEDED,
            Outcome::Failed => store::FAILED,
        }
    }

    pub fn from_label(label: &str) -> Option<Outcome> {
        match label {
            store::SUCCEEDED => Some(Outcome::Succeeded),
            store::FAILED => Some(Outcome::Failed),
            _ => None,
        }
    }
}

/// What a party signs about a computation's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement {
    pub computation: Uuid,
    pub definition_digest: [u8; 32],
    pub outcome: Outcome,
    /// [`output_digest`] of the output, or [`failure_digest`] of the reason code.
    pub outcome_digest: [u8; 32],
}

impl Statement {
    /// The statement of a final computation row with a definition (a tombstone, which no client
    /// here defined, has none).
    pub fn of_row(row: &ComputationRow) -> Option<Statement> {
        let computation = Uuid::parse_str(&row.id).ok()?;
        let definition_digest: [u8; 32] = row.digest.clone()?.try_into().ok()?;
        let outcome = Outcome::from_label(&row.status)?;
        let outcome_digest = match outcome {
            Outcome::Succeeded => output_digest(&parse(&row.output)),
            Outcome::Failed => failure_digest(parse(&row.error)["code"].as_str().unwrap_or_default()),
        };
        Some(Statement {
            computation,
            definition_digest,
            outcome,
            outcome_digest,
        })
    }

    /// The canonical bytes: a label, the id's 16 bytes, the definition digest, the outcome's
    /// label and a NUL, the outcome digest. Fixed-width fields around the one text field, so no
    /// two statements share their bytes.
    pub fn canonical(&self) -> Vec<u8> {
        let mut bytes = b"fsc/receipt/v1\0".to_vec();
        bytes.extend_from_slice(self.computation.as_bytes());
        bytes.extend_from_slice(&self.definition_digest);
        bytes.extend_from_slice(self.outcome.label().as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(&self.outcome_digest);
        bytes
    }

    /// SHA-256 of the canonical bytes: equal for parties that ended alike.
    pub fn digest(&self) -> [u8; 32] {
        sha256(&[&self.canonical()])
    }

    /// This statement's leaf in the tree of the statements its signer signed together.
    fn leaf(&self) -> [u8; 32] {
        sha256(&[b"fsc/receipt-leaf/v1\0", &self.canonical()])
    }
}

/// An inner node of a signer's tree. Labels keep leaves and inner nodes apart, so that no inner
/// node passes for a statement.
fn node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    sha256(&[b"fsc/receipt-node/v1\0", left, right])
}

/// What `party` signs: the root of the tree of the statements it signed together, bound to the
/// signer, so that one party's signature cannot stand for another's.
fn signed_bytes(party: &str, root: &[u8; 32]) -> Vec<u8> {
    let mut bytes = b"fsc/receipt-signature/v2\0".to_vec();
    bytes.extend_from_slice(party.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(root);
    bytes
}

/// Most statements under one signature: a signature costs more than the rest of a small
/// computation, so it is shared; but every row stores its path (3 steps of 65 characters for 8),
/// and rows are what a batch of computations writes most.
const GROUP: usize = 8;

/// Most steps in a path a verifier follows (a tree of 2^32 statements).
const MAX_PATH: usize = 32;

/// The digest of a computation's output: SHA-256 over a label and its canonical JSON (object
/// keys sorted, numbers as the engine wrote them).
pub fn output_digest(output: &Value) -> [u8; 32] {
    let canonical = serde_json::to_vec(output).expect("JSON values serialise");
    sha256(&[b"fsc/receipt-output/v1\0", &canonical])
}

/// The digest of a failure: SHA-256 over a label and the reason code.
pub fn failure_digest(code: &str) -> [u8; 32] {
    sha256(&[b"fsc/receipt-failure/v1\0", code.as_bytes()])
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut context = digest::Context::new(&digest::SHA256);
    for part in parts {
        context.update(part);
    }
    context.finish().as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// One party's signature over its statement, as stored and as the `receipt` message carries it
/// (the computation and the party come from the store's key or the message's header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed {
    /// Hex.
    pub definition_digest: String,
    pub outcome: Outcome,
    /// Hex.
    pub outcome_digest: String,
    /// The roster key (of the signer's entry) that signed.
    pub key_id: String,
    /// Ed25519, base64, over the root of the signer's tree (`signed_bytes`).
    pub signature: String,
    /// From the statement's leaf up to that root, the sibling at each level: `l` or `r` (the
    /// side it is on) and 64 hex digits. Empty for a statement signed alone (the root is its
    /// leaf).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
}

impl Signed {
    /// `party`'s signatures of `statements`, by its key `key_id`, in groups of up to
    /// [`GROUP`]: one Ed25519 signature over the root of a Merkle tree of each group (a level's
    /// odd last node moves up as it is), and each statement's path to it. A node signs
    /// everything that ended in one batch at once.
    pub fn sign_all(statements: &[Statement], keys: &NodeKeys, key_id: &str, party: &str) -> Vec<Signed> {
        statements
            .chunks(GROUP)
            .flat_map(|group| Signed::sign_group(group, keys, key_id, party))
            .collect()
    }

    fn sign_group(statements: &[Statement], keys: &NodeKeys, key_id: &str, party: &str) -> Vec<Signed> {
        let mut level: Vec<[u8; 32]> = statements.iter().map(Statement::leaf).collect();
        let mut paths = vec![Vec::new(); statements.len()];
        let mut places: Vec<usize> = (0..statements.len()).collect();
        while level.len() > 1 {
            for (path, place) in paths.iter_mut().zip(&mut places) {
                let sibling = *place ^ 1;
                if let Some(hash) = level.get(sibling) {
                    path.push(format!("{}{}", if sibling < *place { 'l' } else { 'r' }, hex(hash)));
                }
                *place >>= 1;
            }
            level = level
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => node(left, right),
                    [alone] => *alone,
                    _ => unreachable!("chunks of two"),
                })
                .collect();
        }
        let root = level[0];
        let signature = keys::encode_base64(&keys.sign(&signed_bytes(party, &root)));
        statements
            .iter()
            .zip(paths)
            .map(|(statement, path)| Signed {
                definition_digest: hex(&statement.definition_digest),
                outcome: statement.outcome,
                outcome_digest: hex(&statement.outcome_digest),
                key_id: key_id.to_string(),
                signature: signature.clone(),
                path,
            })
            .collect()
    }

    /// The root `statement`'s path leads to; `None` if the path is malformed.
    fn root(&self, statement: &Statement) -> Option<[u8; 32]> {
        if self.path.len() > MAX_PATH {
            return None;
        }
        self.path.iter().try_fold(statement.leaf(), |hash, step| {
            let sibling = unhex(step.get(1..)?)?;
            match step.as_bytes().first()? {
                b'l' => Some(node(&sibling, &hash)),
                b'r' => Some(node(&hash, &sibling)),
                _ => None,
            }
        })
    }

    /// Whether this is `party`'s signature over `statement`, by the Ed25519 key `public`.
    pub fn holds(&self, statement: &Statement, public: &[u8; 32], party: &str) -> bool {
        let Some(root) = self.root(statement) else {
            return false;
        };
        keys::decode_base64(&self.signature, "signature")
            .is_ok_and(|signature| keys::verify(public, &signed_bytes(party, &root), &signature))
    }

    /// A stored signature; `None` if its outcome is not one this node writes.
    pub fn from_row(row: &ReceiptRow) -> Option<Signed> {
        Some(Signed {
            definition_digest: row.definition_digest.clone(),
            outcome: Outcome::from_label(&row.outcome)?,
            outcome_digest: row.outcome_digest.clone(),
            key_id: row.key_id.clone(),
            signature: row.signature.clone(),
            path: row.path.split_whitespace().map(str::to_string).collect(),
        })
    }

    /// The statement signed, for `computation`; `None` if a digest is not 32 bytes of hex.
    pub fn statement(&self, computation: Uuid) -> Option<Statement> {
        Some(Statement {
            computation,
            definition_digest: unhex(&self.definition_digest)?,
            outcome: self.outcome,
            outcome_digest: unhex(&self.outcome_digest)?,
        })
    }

    /// Whether this is `party`'s signature over its statement for `computation`, by the key
    /// it names in `roster`.
    pub fn verify(&self, computation: Uuid, party: &str, roster: &Roster) -> Result<Statement, String> {
        let statement = self
            .statement(computation)
            .ok_or_else(|| "a digest is not 64 hex digits".to_string())?;
        let key = roster
            .party(party)
            .and_then(|p| p.keys.iter().find(|k| k.id == self.key_id))
            .ok_or_else(|| format!("the roster lists no key {:?} of {party}", self.key_id))?;
        let public = key.ed25519_bytes().map_err(|e| e.to_string())?;
        if self.holds(&statement, &public, party) {
            Ok(statement)
        } else {
            Err("the signature does not verify (forged, or over another statement)".into())
        }
    }
}

/// One signature as a `receipt` message carries it: a message carries this node's signatures of
/// the computations that ended in one of its batches, so that a batch of computations costs each
/// peer one sealed message, not one per computation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub computation: Uuid,
    #[serde(flatten)]
    pub signed: Signed,
}

/// Each party's signature as the receipt shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum PartySignature {
    /// Signed the receipt's statement.
    Signed {
        party: String,
        #[serde(flatten)]
        signed: Signed,
    },
    /// Signed another statement (another output or outcome): that party ended differently.
    Disagreeing {
        party: String,
        /// Hex SHA-256 of the party's own statement.
        statement_digest: String,
        #[serde(flatten)]
        signed: Signed,
    },
    /// No signature has reached this node (yet).
    Missing { party: String },
}

/// A computation's receipt as one node shows it: the statement it signed, with what it states
/// in the clear (so that a verifier recomputes the digests), and every party's signature. A
/// helper from outside the parties signs nothing: it ends with the shapes, not the output, so it
/// has no output to attest (and no client of its own to read a receipt).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub computation: Uuid,
    /// The node that assembled it.
    pub node: String,
    pub microprotocol: String,
    pub parties: Vec<String>,
    pub parameters: Value,
    pub definition_digest: String,
    pub outcome: Outcome,
    /// The output, if it succeeded.
    pub output: Value,
    /// The reason code, if it failed.
    pub reason: Option<String>,
    pub outcome_digest: String,
    pub statement_digest: String,
    /// Every party's signature was received and agrees.
    pub complete: bool,
    pub signatures: Vec<PartySignature>,
}

impl Receipt {
    /// The receipt of a final computation `row` (with a definition) at `node`, one of its
    /// parties, from the signatures stored here; `None` for a row without a definition, not
    /// final, or of a computation `node` only helped.
    pub fn assemble(node: &str, row: &ComputationRow, stored: &[ReceiptRow]) -> Option<Receipt> {
        let statement = Statement::of_row(row)?;
        let parties: Vec<String> = serde_json::from_value(parse(&row.parties)).unwrap_or_default();
        if !parties.iter().any(|p| p == node) {
            return None;
        }
        let parameters = parse(&row.parameters);
        let stored: Vec<(&str, Signed)> = stored
            .iter()
            .filter_map(|r| Some((r.party.as_str(), Signed::from_row(r)?)))
            .collect();
        let ours = hex(&statement.digest());
        let signatures: Vec<PartySignature> = parties
            .iter()
            .map(|party| {
                let Some((_, signed)) = stored.iter().find(|(p, _)| p == party) else {
                    return PartySignature::Missing { party: party.clone() };
                };
                let theirs = signed.statement(statement.computation).map(|s| hex(&s.digest()));
                if theirs.as_deref() == Some(ours.as_str()) {
                    PartySignature::Signed {
                        party: party.clone(),
                        signed: signed.clone(),
                    }
                } else {
                    PartySignature::Disagreeing {
                        party: party.clone(),
                        statement_digest: theirs.unwrap_or_default(),
                        signed: signed.clone(),
                    }
                }
            })
            .collect();
        Some(Receipt {
            computation: statement.computation,
            node: node.to_string(),
            microprotocol: row.microprotocol.clone().unwrap_or_default(),
            parties,
            parameters,
            definition_digest: hex(&statement.definition_digest),
            outcome: statement.outcome,
            output: parse(&row.output),
            reason: (statement.outcome == Outcome::Failed)
                .then(|| parse(&row.error)["code"].as_str().map(str::to_string))
                .flatten(),
            outcome_digest: hex(&statement.outcome_digest),
            statement_digest: ours,
            complete: signatures.iter().all(|s| matches!(s, PartySignature::Signed { .. })),
            signatures,
        })
    }

    /// Checks the receipt offline against `roster`: the digests from what it states in the
    /// clear, every party's signature by its roster key. Returns one line per party
    /// (who signed what) and the problems found; a receipt is valid when there are none.
    pub fn verify(&self, roster: &Roster) -> (Vec<String>, Vec<String>) {
        let (mut lines, mut problems) = (Vec::new(), Vec::new());
        let definition = definition_digest(self.computation, &self.microprotocol, &self.parties, &self.parameters);
        if hex(&definition) != self.definition_digest {
            problems.push("the definition digest does not match the microprotocol, parties and parameters".into());
        }
        let outcome_digest = match self.outcome {
            Outcome::Succeeded => output_digest(&self.output),
            Outcome::Failed => failure_digest(self.reason.as_deref().unwrap_or_default()),
        };
        if hex(&outcome_digest) != self.outcome_digest {
            problems.push(format!(
                "the {} does not match the outcome digest (changed after signing)",
                if self.outcome == Outcome::Succeeded {
                    "output"
                } else {
                    "reason"
                }
            ));
        }
        let statement = Statement {
            computation: self.computation,
            definition_digest: definition,
            outcome: self.outcome,
            outcome_digest,
        };
        if hex(&statement.digest()) != self.statement_digest {
            problems.push("the statement digest does not match the statement".into());
        }
        for party in &self.parties {
            if !self.signatures.iter().any(|s| s.party() == party) {
                problems.push(format!("{party}: no signature entry"));
            }
        }
        for entry in &self.signatures {
            let party = entry.party();
            if !self.parties.iter().any(|p| p == party) {
                problems.push(format!("{party}: signed, but is not a party"));
                continue;
            }
            match entry {
                PartySignature::Missing { .. } => problems.push(format!("{party}: signature missing")),
                PartySignature::Signed { signed, .. } => match signed.verify(self.computation, party, roster) {
                    Ok(theirs) if theirs == statement => lines.push(format!(
                        "{party}: signed {} {} (key {})",
                        self.outcome.label(),
                        self.outcome_digest,
                        signed.key_id
                    )),
                    Ok(_) => problems.push(format!("{party}: signed another statement than this receipt's")),
                    Err(why) => problems.push(format!("{party}: {why}")),
                },
                PartySignature::Disagreeing { signed, .. } => match signed.verify(self.computation, party, roster) {
                    Ok(theirs) => problems.push(format!(
                        "{party}: disagrees, signed {} {} (statement {})",
                        theirs.outcome.label(),
                        hex(&theirs.outcome_digest),
                        hex(&theirs.digest())
                    )),
                    Err(why) => problems.push(format!("{party}: {why}")),
                },
            }
        }
        (lines, problems)
    }
}

impl PartySignature {
    pub fn party(&self) -> &str {
        match self {
            PartySignature::Signed { party, .. }
            | PartySignature::Disagreeing { party, .. }
            | PartySignature::Missing { party } => party,
        }
    }
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(bytes)
}

/// A stored JSON column's value (`null` if absent).
fn parse(text: &Option<String>) -> Value {
    text.as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// Reads a receipt file (`fsc audit receipt` wrote it).
pub fn read(path: &std::path::Path) -> Result<Receipt, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read receipt {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Error::Config(format!("receipt {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::roster::test_roster;
    use serde_json::json;
    use std::collections::HashSet;

    const PARTIES: [&str; 3] = ["alice", "bob", "carol"];

    fn final_row(output: Value) -> ComputationRow {
        let id = Uuid::from_u128(0x6f1c_1d7e_3b1a_4c55_9d0e_2f4c_7b9a_0e11);
        let parties: Vec<String> = PARTIES.iter().map(|p| p.to_string()).collect();
        let parameters = json!({});
        ComputationRow {
            id: id.to_string(),
            microprotocol: Some("SecureSum".into()),
            parties: Some(serde_json::to_string(&parties).unwrap()),
            parameters: Some(parameters.to_string()),
            digest: Some(definition_digest(id, "SecureSum", &parties, &parameters).to_vec()),
            status: store::SUCCEEDED.into(),
            machine: None,
            next_seq: 3,
            output: Some(output.to_string()),
            error: None,
            deadline_at: 0,
            created_at: 0,
            finished_at: Some(1),
            network: None,
            client: Some("analyst".into()),
            dataset: None,
        }
    }

    fn signature_row(statement: &Statement, party: &str, keys: &NodeKeys) -> ReceiptRow {
        let signed = Signed::sign_all(&[*statement], keys, "k1", party).remove(0);
        ReceiptRow {
            computation: statement.computation.to_string(),
            party: party.into(),
            definition_digest: signed.definition_digest,
            outcome: signed.outcome.label().into(),
            outcome_digest: signed.outcome_digest,
            key_id: signed.key_id,
            signature: signed.signature,
            path: signed.path.join(" "),
            received_at: 1,
            unsolicited: false,
        }
    }

    /// A receipt of the tutorial's sum signed by all three parties, with the roster.
    fn signed_receipt() -> (Receipt, Roster, Vec<ReceiptRow>) {
        let (roster, keys) = test_roster(&PARTIES);
        let row = final_row(json!({"inputs": 3, "result": {"sum": 85.0, "samples": 3}}));
        let statement = Statement::of_row(&row).unwrap();
        let rows: Vec<ReceiptRow> = PARTIES
            .iter()
            .zip(&keys)
            .map(|(party, keys)| signature_row(&statement, party, keys))
            .collect();
        (Receipt::assemble("alice", &row, &rows).unwrap(), roster, rows)
    }

    #[test]
    fn the_statement_has_one_canonical_encoding() {
        let statement = Statement {
            computation: Uuid::from_u128(1),
            definition_digest: [7; 32],
            outcome: Outcome::Failed,
            outcome_digest: failure_digest("deadline_exceeded"),
        };
        let mut expected = b"fsc/receipt/v1\0".to_vec();
        expected.extend_from_slice(&1u128.to_be_bytes());
        expected.extend_from_slice(&[7; 32]);
        expected.extend_from_slice(b"failed\0");
        expected.extend_from_slice(&statement.outcome_digest);
        assert_eq!(statement.canonical(), expected);
        // Every field counts.
        let others = [
            Statement {
                computation: Uuid::from_u128(2),
                ..statement
            },
            Statement {
                definition_digest: [8; 32],
                ..statement
            },
            Statement {
                outcome: Outcome::Succeeded,
                ..statement
            },
            Statement {
                outcome_digest: failure_digest("stalled"),
                ..statement
            },
        ];
        for other in others {
            assert_ne!(other.digest(), statement.digest(), "{other:?}");
        }
        // The output's digest does not depend on the order its keys were written in.
        let a: Value = serde_json::from_str(r#"{"inputs": 3, "result": {"sum": 85.0, "samples": 3}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"result": {"samples": 3, "sum": 85.0}, "inputs": 3}"#).unwrap();
        assert_eq!(output_digest(&a), output_digest(&b));
        assert_ne!(
            output_digest(&a),
            output_digest(&json!({"inputs": 3, "result": {"sum": 86.0}}))
        );
    }

    #[test]
    fn one_signature_covers_a_batch_and_each_statement_verifies_alone() {
        let (roster, keys) = test_roster(&PARTIES);
        let public = keys[0].ed25519_public();
        for count in [1usize, 2, 5, 8, 11] {
            let statements: Vec<Statement> = (0..count as u128)
                .map(|i| Statement {
                    computation: Uuid::from_u128(i),
                    definition_digest: [i as u8; 32],
                    outcome: Outcome::Succeeded,
                    outcome_digest: output_digest(&json!({"sum": i})),
                })
                .collect();
            let signed = Signed::sign_all(&statements, &keys[0], "k1", "alice");
            // One signature per group of eight.
            let signatures: HashSet<&str> = signed.iter().map(|s| s.signature.as_str()).collect();
            assert_eq!(signatures.len(), count.div_ceil(GROUP));
            assert!(signed.iter().all(|s| s.path.len() <= 3));
            for (i, (statement, one)) in statements.iter().zip(&signed).enumerate() {
                assert!(one.holds(statement, &public, "alice"), "{count}: {i}");
                assert_eq!(one.verify(statement.computation, "alice", &roster), Ok(*statement));
                assert!(!one.holds(statement, &public, "bob"));
                // Another statement's path, or its own changed, leads elsewhere.
                if count > 1 {
                    assert!(!one.holds(&statements[(i + 1) % count], &public, "alice"));
                }
                if let Some(step) = one.path.first() {
                    let mut bent = one.clone();
                    bent.path[0] = format!("{}{}", if step.starts_with('l') { 'r' } else { 'l' }, &step[1..]);
                    assert!(!bent.holds(statement, &public, "alice"));
                    bent.path.truncate(0);
                    assert!(!bent.holds(statement, &public, "alice"));
                }
            }
        }
    }

    #[test]
    fn a_receipt_signed_by_every_party_verifies_and_survives_json() {
        let (receipt, roster, _) = signed_receipt();
        assert!(receipt.complete);
        let (lines, problems) = receipt.verify(&roster);
        assert_eq!(problems, Vec::<String>::new());
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("bob: signed succeeded"), "{lines:?}");
        let text = serde_json::to_string_pretty(&receipt).unwrap();
        assert_eq!(serde_json::from_str::<Receipt>(&text).unwrap(), receipt);
    }

    #[test]
    fn forged_missing_and_changed_receipts_fail() {
        let (receipt, roster, rows) = signed_receipt();

        let mut forged = receipt.clone();
        let PartySignature::Signed { signed, .. } = &mut forged.signatures[1] else {
            panic!("bob signed");
        };
        signed.signature = rows[0].signature.clone();
        let (_, problems) = forged.verify(&roster);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("bob: the signature does not verify"),
            "{problems:?}"
        );

        let mut missing = receipt.clone();
        missing.signatures[2] = PartySignature::Missing { party: "carol".into() };
        assert_eq!(missing.verify(&roster).1, ["carol: signature missing"]);
        let mut dropped = receipt.clone();
        dropped.signatures.pop();
        assert_eq!(dropped.verify(&roster).1, ["carol: no signature entry"]);

        let mut changed = receipt.clone();
        changed.output["result"]["sum"] = json!(86.0);
        let problems = changed.verify(&roster).1;
        assert!(problems[0].contains("output does not match"), "{problems:?}");

        let mut redefined = receipt.clone();
        redefined.parameters = json!({"digits_after": 3});
        assert!(redefined.verify(&roster).1[0].contains("definition digest"));

        // Keys that are not the roster's: no signature verifies.
        let (other_roster, _) = test_roster(&PARTIES);
        assert_eq!(receipt.verify(&other_roster).1.len(), 3);
    }

    #[test]
    fn a_party_that_signed_another_output_is_shown_disagreeing() {
        let (roster, keys) = test_roster(&PARTIES);
        let row = final_row(json!({"inputs": 3, "result": {"sum": 85.0}}));
        let ours = Statement::of_row(&row).unwrap();
        let theirs = Statement {
            outcome_digest: output_digest(&json!({"inputs": 3, "result": {"sum": 99.0}})),
            ..ours
        };
        let rows = [
            signature_row(&ours, "alice", &keys[0]),
            signature_row(&theirs, "carol", &keys[2]),
        ];
        let receipt = Receipt::assemble("alice", &row, &rows).unwrap();
        assert!(!receipt.complete);
        assert!(matches!(&receipt.signatures[1], PartySignature::Missing { party } if party == "bob"));
        let PartySignature::Disagreeing { statement_digest, .. } = &receipt.signatures[2] else {
            panic!("carol disagrees: {:?}", receipt.signatures[2]);
        };
        assert_eq!(*statement_digest, hex(&theirs.digest()));
        let problems = receipt.verify(&roster).1;
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[1].starts_with("carol: disagrees, signed succeeded"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_failure_is_signed_by_its_reason_code() {
        let mut row = final_row(Value::Null);
        row.status = store::FAILED.into();
        row.output = None;
        row.error = Some(json!({"code": "invalid_input", "message": "bob's input quoted here"}).to_string());
        let statement = Statement::of_row(&row).unwrap();
        assert_eq!(statement.outcome, Outcome::Failed);
        assert_eq!(statement.outcome_digest, failure_digest("invalid_input"));
        let receipt = Receipt::assemble("bob", &row, &[]).unwrap();
        assert_eq!(receipt.reason.as_deref(), Some("invalid_input"));
        assert_eq!(receipt.output, Value::Null);
        // A tombstone has no definition, so no receipt.
        row.digest = None;
        assert!(Statement::of_row(&row).is_none());
    }
}
