//! The federation roster `federation.toml`: who may compute together, with their pinned
//! public keys and API URLs, and the stream they all expect on the broker.
//!
//! Loading checks party ids and that every roster key is self-signed by its party.

use super::stream::StreamSpec;
use crate::error::Error;
use crate::keys::{self, NodeKeys};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Party ids: `[a-z0-9-]{1,32}` (they appear in NATS subjects and user names).
pub fn validate_party_id(id: &str) -> Result<(), Error> {
    let ok = (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!("party id {id:?} must match [a-z0-9-]{{1,32}}")))
    }
}

/// The federation roster: who may compute together, with their pinned public keys, and the
/// stream they all expect on the broker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roster {
    /// In the roster rather than in node.toml: every party must expect the same stream, and
    /// the roster is the one file every party holds the same copy of.
    #[serde(default)]
    pub stream: StreamSpec,
    #[serde(rename = "party")]
    pub parties: Vec<RosterParty>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterParty {
    pub id: String,
    /// Base URLs under which this party's HTTP API is reachable, as clients write them.
    #[serde(default)]
    pub api_urls: Vec<String>,
    /// Newest last; peers seal messages to the last key.
    #[serde(rename = "key")]
    pub keys: Vec<RosterKey>,
}

impl RosterParty {
    /// A party's roster entry for its keys; the key signs its own entry.
    pub fn new(id: &str, node_keys: &NodeKeys, api_urls: Vec<String>) -> RosterParty {
        let key_id = "k1";
        let (x, e) = (node_keys.x25519_public(), node_keys.ed25519_public());
        let signature = node_keys.sign(&RosterKey::signed_bytes(id, key_id, &x, &e));
        RosterParty {
            id: id.to_string(),
            api_urls,
            keys: vec![RosterKey {
                id: key_id.to_string(),
                x25519: keys::encode_base64(&x),
                ed25519: keys::encode_base64(&e),
                signature: keys::encode_base64(&signature),
            }],
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterKey {
    pub id: String,
    /// X25519 public key, base64.
    pub x25519: String,
    /// Ed25519 public key, base64.
    pub ed25519: String,
    /// The party's Ed25519 signature over [`RosterKey::signed_bytes`], base64.
    pub signature: String,
}

impl RosterKey {
    /// What a party signs to claim a key: its id, the key id and both public keys.
    pub fn signed_bytes(party: &str, key_id: &str, x25519: &[u8; 32], ed25519: &[u8; 32]) -> Vec<u8> {
        let mut bytes = b"fsc/roster-key/v1\0".to_vec();
        for part in [party.as_bytes(), key_id.as_bytes()] {
            bytes.extend_from_slice(part);
            bytes.push(0);
        }
        bytes.extend_from_slice(x25519);
        bytes.extend_from_slice(ed25519);
        bytes
    }

    pub fn x25519_bytes(&self) -> Result<[u8; 32], Error> {
        key32(&self.x25519, "x25519 public key")
    }

    pub fn ed25519_bytes(&self) -> Result<[u8; 32], Error> {
        key32(&self.ed25519, "ed25519 public key")
    }
}

fn key32(text: &str, what: &str) -> Result<[u8; 32], Error> {
    keys::decode_base64(text, what)?
        .try_into()
        .map_err(|_| Error::Config(format!("{what} must be 32 bytes")))
}

impl Roster {
    pub fn load(path: &Path) -> Result<Roster, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read roster {}: {e}", path.display())))?;
        let roster: Roster =
            toml::from_str(&text).map_err(|e| Error::Config(format!("roster {}: {e}", path.display())))?;
        roster.validate()?;
        Ok(roster)
    }

    /// Ids valid and unique, every party with at least one key, every key self-signed; the
    /// stream spec sound.
    pub fn validate(&self) -> Result<(), Error> {
        self.stream.validate()?;
        let mut seen = std::collections::HashSet::new();
        for party in &self.parties {
            validate_party_id(&party.id)?;
            if !seen.insert(party.id.as_str()) {
                return Err(Error::Config(format!("roster lists party {:?} twice", party.id)));
            }
            if party.keys.is_empty() {
                return Err(Error::Config(format!("roster party {:?} has no key", party.id)));
            }
            for key in &party.keys {
                let (x, e) = (key.x25519_bytes()?, key.ed25519_bytes()?);
                let signature = keys::decode_base64(&key.signature, "roster key signature")?;
                if !keys::verify(&e, &RosterKey::signed_bytes(&party.id, &key.id, &x, &e), &signature) {
                    return Err(Error::Config(format!(
                        "roster key {:?} of party {:?} has a bad signature",
                        key.id, party.id
                    )));
                }
            }
        }
        Ok(())
    }

    pub fn party(&self, id: &str) -> Option<&RosterParty> {
        self.parties.iter().find(|p| p.id == id)
    }
}

#[cfg(test)]
pub(crate) fn test_roster(ids: &[&str]) -> (Roster, Vec<NodeKeys>) {
    let mut roster = Roster {
        stream: Default::default(),
        parties: Vec::new(),
    };
    let mut all = Vec::new();
    for id in ids {
        let (node_keys, _) = NodeKeys::generate().unwrap();
        roster.parties.push(RosterParty::new(id, &node_keys, vec![]));
        all.push(node_keys);
    }
    roster.validate().unwrap();
    (roster, all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roster_without_a_stream_table_gets_the_default_stream() {
        let (roster, _) = test_roster(&["alice", "bob"]);
        let mut table: toml::Table = toml::from_str(&toml::to_string(&roster).unwrap()).unwrap();
        assert!(table.remove("stream").is_some(), "init writes the table");
        let old: Roster = toml::from_str(&toml::to_string(&table).unwrap()).unwrap();
        assert_eq!(old.stream, StreamSpec::default());
        old.validate().unwrap();
        let partial: StreamSpec = toml::from_str("name = \"ACME\"\nreplicas = 3").unwrap();
        assert_eq!((partial.name.as_str(), partial.replicas), ("ACME", 3));
        assert_eq!(partial.subject_prefix, "fsc");
        assert!(
            toml::from_str::<StreamSpec>("republish = true").is_err(),
            "unknown keys are refused"
        );
        for bad in [
            StreamSpec {
                name: "FSC.x".into(),
                ..Default::default()
            },
            StreamSpec {
                subject_prefix: "fsc.*".into(),
                ..Default::default()
            },
            StreamSpec {
                subject_prefix: "fsc.".into(),
                ..Default::default()
            },
            StreamSpec {
                replicas: 0,
                ..Default::default()
            },
            StreamSpec {
                max_bytes: -1,
                ..Default::default()
            },
            StreamSpec {
                duplicate_window_s: 9000,
                ..Default::default()
            },
        ] {
            let error = bad.validate().unwrap_err().to_string();
            assert!(error.contains("[stream]"), "{bad:?}: {error}");
        }
    }
}
