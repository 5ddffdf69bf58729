//! A node's long-term secrets and their files: the X25519 key that seals messages, the Ed25519
//! key that signs roster entries and aborts, and the NATS user seed.
//!
//! Secrets live in files of mode 0600 next to the node's config, never in the database and never
//! in logs. This module reads them (the tools crate writes them); it does not decide what they
//! are used for.

use crate::error::Error;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use std::path::Path;
use x25519_dalek::{PublicKey, StaticSecret};

/// The secrets of one node.
pub struct NodeKeys {
    pub x25519: StaticSecret,
    pub ed25519: Ed25519KeyPair,
}

impl NodeKeys {
    /// Fresh keys from the operating system's CSPRNG; returns them with their file contents.
    pub fn generate() -> Result<(NodeKeys, SecretFiles), Error> {
        let rng = SystemRandom::new();
        let mut x25519 = [0u8; 32];
        ring::rand::SecureRandom::fill(&rng, &mut x25519).map_err(|_| Error::Crypto("no system randomness".into()))?;
        let pkcs8 =
            Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| Error::Crypto("ed25519 key generation failed".into()))?;
        let files = SecretFiles {
            x25519: BASE64.encode(x25519),
            ed25519: BASE64.encode(pkcs8.as_ref()),
        };
        Ok((NodeKeys::parse(&files)?, files))
    }

    pub fn load(x25519_path: &Path, ed25519_path: &Path) -> Result<NodeKeys, Error> {
        let files = SecretFiles {
            x25519: read_secret(x25519_path)?,
            ed25519: read_secret(ed25519_path)?,
        };
        NodeKeys::parse(&files)
    }

    fn parse(files: &SecretFiles) -> Result<NodeKeys, Error> {
        let x25519: [u8; 32] = decode_base64(&files.x25519, "x25519 secret key")?
            .try_into()
            .map_err(|_| Error::Config("x25519 secret key must be 32 bytes".into()))?;
        let pkcs8 = decode_base64(&files.ed25519, "ed25519 secret key")?;
        let ed25519 = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|e| Error::Config(format!("ed25519 secret key is not a PKCS#8 document: {e}")))?;
        Ok(NodeKeys {
            x25519: StaticSecret::from(x25519),
            ed25519,
        })
    }

    pub fn x25519_public(&self) -> [u8; 32] {
        PublicKey::from(&self.x25519).to_bytes()
    }

    pub fn ed25519_public(&self) -> [u8; 32] {
        self.ed25519
            .public_key()
            .as_ref()
            .try_into()
            .expect("ed25519 public keys are 32 bytes")
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.ed25519.sign(message).as_ref().to_vec()
    }
}

/// Verifies an Ed25519 signature by a roster key.
pub fn verify(public: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public)
        .verify(message, signature)
        .is_ok()
}

/// The base64 contents of a node's two secret key files.
pub struct SecretFiles {
    pub x25519: String,
    pub ed25519: String,
}

pub fn decode_base64(text: &str, what: &str) -> Result<Vec<u8>, Error> {
    BASE64
        .decode(text.trim())
        .map_err(|e| Error::Config(format!("{what} is not valid base64: {e}")))
}

pub fn encode_base64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// A new API client token (256 bits, URL-safe so that it fits in `http://user:<token>@host`)
/// and the SHA-256 that node.toml stores for it.
pub fn new_api_token() -> Result<(String, String), Error> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut bytes)
        .map_err(|_| Error::Crypto("no system randomness".into()))?;
    let token = format!("fsc_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let digest = api_token_sha256(&token);
    Ok((token, digest))
}

/// The hex SHA-256 of an API token, as node.toml stores it.
pub fn api_token_sha256(token: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads a secret file, refusing one that others can read.
pub fn read_secret(path: &Path) -> Result<String, Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(Error::Config(format!(
                "{} is readable by other users (mode {:o}); run chmod 600 on it",
                path.display(),
                mode & 0o777
            )));
        }
    }
    std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))
}
