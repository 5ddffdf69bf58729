//! A computation's definition as every party must agree on it: its digest, and who takes part.
//! The runtime checks the digest on every message; receipts sign it, and a verifier recomputes
//! it offline.

use ring::digest;
use serde_json::{Value, json};
use uuid::Uuid;

/// SHA-256 over the canonical JSON of what all parties must agree on.
pub fn definition_digest(id: Uuid, microprotocol: &str, parties: &[String], parameters: &Value) -> [u8; 32] {
    let canonical = serde_json::to_vec(&json!(["fsc/definition/v1", id, microprotocol, parties, parameters]))
        .expect("JSON values serialise");
    digest::digest(&digest::SHA256, &canonical)
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

/// The participants of a computation in engine index order: its parties, then the helper its
/// (normalised) parameters name, if that is not a party (`runtime::helper`).
pub fn participants(parties: &[String], parameters: &Value) -> Vec<String> {
    let mut all = parties.to_vec();
    if let Some(helper) = parameters.get("helper").and_then(Value::as_str) {
        if !all.iter().any(|p| p == helper) {
            all.push(helper.to_string());
        }
    }
    all
}
