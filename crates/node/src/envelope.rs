//! The envelope: how one party's message to another is sealed for the broker and opened again.
//!
//! Every node holds a static X25519 key and an Ed25519 key, both pinned in the roster. The static
//! Diffie-Hellman secret with each peer is computed once, at start. For computation C and
//! direction A→B a ChaCha20-Poly1305 key is derived with HKDF-SHA256 (salt C; info "fsc/v1", A,
//! B, key ids), and a message is sealed under it with a fresh random nonce. The clear header
//! `{v, computation, from, to, seq, kind, key_id, nonce}` is the AEAD's associated data, so
//! nothing in it can be changed, and a message cannot be moved to another computation, direction
//! or recipient: its key would differ. Replays are caught by the store's unique
//! `(computation, from, seq)`. One message costs one AEAD and one HKDF, no public-key operation.
//! Aborts and receipts additionally carry an Ed25519 signature that any third party can check
//! (an abort's is checked as it is applied, a receipt's when the receipt is read). The same
//! static secrets, under their own HKDF label, give the pairwise mask seeds of secure sums
//! ([`Envelopes::mask_seeds`]).
//!
//! Wire format: `u16 header length (big endian) | header JSON | ciphertext and tag`.
//! This module owns the cryptography and the format; it neither stores nor sends anything.

use crate::config::roster::{Roster, RosterKey};
use crate::error::Error;
use crate::failure::Announced;
use crate::keys::{self, NodeKeys};
use crate::receipt::{Signed, Statement};
use fsc_simon::masks::{Masks, Seed};
use rand_core::RngCore;
use ring::{aead, digest, hkdf, hmac};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;
use x25519_dalek::PublicKey;

pub const VERSION: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A protocol message: the definition digest (32 bytes) followed by the engine's message.
    Data,
    /// A party's first protocol message to each peer when its client submits: the computation's
    /// definition (length-prefixed), then a `Data` body. A peer whose client has not submitted
    /// lists it as a proposal (`runtime::proposals`).
    Opening,
    /// A signed notice that the sender failed the computation.
    Abort,
    /// A computation's definition, sent by each party to the helper of a two-party computation,
    /// which has no client of its own and joins on it (`runtime::helper`); and by the party that
    /// starts a computation to each peer its first step sends nothing to, which lists it as a
    /// proposal (`runtime::proposals`).
    Invite,
    /// The sender's deadline passed: a party whose client has not submitted fails the
    /// computation for everybody, one that has ignores it (`runtime::deadlines`).
    Expire,
    /// The sender's signature over how the computation ended there (`crate::receipt`), sent
    /// after its end; stored, never applied to the computation.
    Receipt,
}

impl Kind {
    /// How the store's inbox names this kind.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Data => "data",
            Kind::Opening => "opening",
            Kind::Abort => "abort",
            Kind::Invite => "invite",
            Kind::Expire => "expire",
            Kind::Receipt => "receipt",
        }
    }

    pub fn from_label(label: &str) -> Kind {
        match label {
            "abort" => Kind::Abort,
            "opening" => Kind::Opening,
            "invite" => Kind::Invite,
            "expire" => Kind::Expire,
            "receipt" => Kind::Receipt,
            _ => Kind::Data,
        }
    }
}

/// The clear, authenticated header of a sealed message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub v: u8,
    pub computation: Uuid,
    pub from: String,
    pub to: String,
    pub seq: u64,
    pub kind: Kind,
    /// `<sender key id>.<recipient key id>`: which roster keys the message key derives from.
    pub key_id: String,
    /// 96-bit nonce, base64.
    pub nonce: String,
}

/// Why an incoming message was dropped (also the label of the rejection metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed envelope")]
    Malformed,
    #[error("addressed to another party")]
    Misaddressed,
    #[error("header disagrees with the subject it arrived on")]
    Misrouted,
    #[error("sender is not in the roster")]
    UnknownSender,
    #[error("sealed for a key this node does not hold")]
    UnknownKey,
    #[error("authentication failed (forged or tampered)")]
    Forged,
    #[error("bad abort or receipt signature")]
    BadSignature,
    #[error("duplicate of a message already received")]
    Replay,
    #[error("the sender's stored messages would exceed a quota (max_pending_chunk_bytes, max_unsolicited_bytes)")]
    OverQuota,
}

impl Rejection {
    pub fn label(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::Misaddressed => "misaddressed",
            Rejection::Misrouted => "misrouted",
            Rejection::UnknownSender => "unknown_sender",
            Rejection::UnknownKey => "unknown_key",
            Rejection::Forged => "forged",
            Rejection::BadSignature => "bad_signature",
            Rejection::Replay => "replay",
            Rejection::OverQuota => "over_quota",
        }
    }

    pub const ALL: [Rejection; 9] = [
        Rejection::Malformed,
        Rejection::Misaddressed,
        Rejection::Misrouted,
        Rejection::UnknownSender,
        Rejection::UnknownKey,
        Rejection::Forged,
        Rejection::BadSignature,
        Rejection::Replay,
        Rejection::OverQuota,
    ];
}

/// An opened message.
#[derive(Debug, Clone)]
pub struct Opened {
    pub header: Header,
    pub plaintext: Vec<u8>,
}

struct PeerKey {
    /// The static X25519 secret shared with this peer key.
    shared: [u8; 32],
    x25519: [u8; 32],
    ed25519: [u8; 32],
}

struct Peer {
    keys: HashMap<String, PeerKey>,
    /// The key id messages to this peer are sealed for: the last in its roster entry.
    newest: String,
}

/// Seals and opens messages of one node; built once at start from its keys and the roster.
pub struct Envelopes {
    me: String,
    my_key_id: String,
    /// Whether this node runs the newest key of its roster entry, the one peers seal for and
    /// derive mask seeds with.
    my_key_is_newest: bool,
    /// Our X25519 public key, computed once: deriving it is a scalar multiplication, and every
    /// sum's mask agreement names it.
    my_public: [u8; 32],
    keys: NodeKeys,
    peers: HashMap<String, Peer>,
}

impl Envelopes {
    pub fn new(me: &str, keys: NodeKeys, roster: &Roster) -> Result<Envelopes, Error> {
        let own = roster
            .party(me)
            .ok_or_else(|| Error::Config(format!("party {me:?} is not in the roster")))?;
        let my_public = keys.x25519_public();
        let my_key_id = own
            .keys
            .iter()
            .find(|k| k.x25519_bytes().ok() == Some(my_public) && k.ed25519_bytes().ok() == Some(keys.ed25519_public()))
            .map(|k| k.id.clone())
            .ok_or_else(|| {
                Error::Config(format!(
                    "the roster lists no key of party {me:?} that matches this node's key files"
                ))
            })?;
        let mut peers = HashMap::new();
        for party in roster.parties.iter().filter(|p| p.id != me) {
            let mut peer_keys = HashMap::new();
            for key in &party.keys {
                peer_keys.insert(key.id.clone(), Self::peer_key(&keys, key, &party.id)?);
            }
            let newest = party
                .keys
                .last()
                .expect("roster validation: every party has a key")
                .id
                .clone();
            peers.insert(
                party.id.clone(),
                Peer {
                    keys: peer_keys,
                    newest,
                },
            );
        }
        let my_key_is_newest = own.keys.last().is_some_and(|k| k.id == my_key_id);
        Ok(Envelopes {
            me: me.to_string(),
            my_key_id,
            my_key_is_newest,
            my_public,
            keys,
            peers,
        })
    }

    fn peer_key(keys: &NodeKeys, key: &RosterKey, party: &str) -> Result<PeerKey, Error> {
        let shared = keys.x25519.diffie_hellman(&PublicKey::from(key.x25519_bytes()?));
        if !shared.was_contributory() {
            return Err(Error::Config(format!(
                "roster key {:?} of {party:?} is a low-order point",
                key.id
            )));
        }
        Ok(PeerKey {
            shared: shared.to_bytes(),
            x25519: key.x25519_bytes()?,
            ed25519: key.ed25519_bytes()?,
        })
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    pub fn keys(&self) -> &NodeKeys {
        &self.keys
    }

    pub fn is_peer(&self, party: &str) -> bool {
        self.peers.contains_key(party)
    }

    /// Seals `plaintext` for party `to`.
    pub fn seal(
        &self,
        computation: Uuid,
        to: &str,
        seq: u64,
        kind: Kind,
        plaintext: &[u8],
        rng: &mut dyn RngCore,
    ) -> Result<Vec<u8>, Error> {
        let peer = self
            .peers
            .get(to)
            .ok_or_else(|| Error::Crypto(format!("no roster key for party {to:?}")))?;
        let peer_key = &peer.keys[&peer.newest];
        let mut nonce = [0u8; aead::NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let header = Header {
            v: VERSION,
            computation,
            from: self.me.clone(),
            to: to.to_string(),
            seq,
            kind,
            key_id: format!("{}.{}", self.my_key_id, peer.newest),
            nonce: keys::encode_base64(&nonce),
        };
        let header_bytes = serde_json::to_vec(&header).expect("headers serialise");
        let key = message_key(&peer_key.shared, &header)?;
        let mut body = plaintext.to_vec();
        key.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(&header_bytes),
            &mut body,
        )
        .map_err(|_| Error::Crypto("sealing failed".into()))?;
        let header_len = u16::try_from(header_bytes.len()).map_err(|_| Error::Crypto("header too long".into()))?;
        let mut wire = Vec::with_capacity(2 + header_bytes.len() + body.len());
        wire.extend_from_slice(&header_len.to_be_bytes());
        wire.extend_from_slice(&header_bytes);
        wire.extend_from_slice(&body);
        Ok(wire)
    }

    /// Opens a message that arrived on subject `fsc.<computation>.<me>.<from>`.
    pub fn open(&self, subject_computation: &str, subject_from: &str, wire: &[u8]) -> Result<Opened, Rejection> {
        self.open_routed(Some(subject_computation), subject_from, wire)
    }

    /// Opens a message that arrived in a bundle (`crate::bundle`) on a subject of `from`'s: the
    /// bundle's subject names one computation, its messages may belong to any.
    pub fn open_bundled(&self, subject_from: &str, wire: &[u8]) -> Result<Opened, Rejection> {
        self.open_routed(None, subject_from, wire)
    }

    fn open_routed(
        &self,
        subject_computation: Option<&str>,
        subject_from: &str,
        wire: &[u8],
    ) -> Result<Opened, Rejection> {
        let (header_bytes, body) = split_wire(wire).ok_or(Rejection::Malformed)?;
        let header: Header = serde_json::from_slice(header_bytes).map_err(|_| Rejection::Malformed)?;
        if header.v != VERSION {
            return Err(Rejection::Malformed);
        }
        if header.to != self.me {
            return Err(Rejection::Misaddressed);
        }
        if header.from != subject_from || subject_computation.is_some_and(|c| header.computation.to_string() != c) {
            return Err(Rejection::Misrouted);
        }
        let peer = self.peers.get(&header.from).ok_or(Rejection::UnknownSender)?;
        let peer_key = self.sender_key(peer, &header)?;
        let nonce: [u8; aead::NONCE_LEN] = keys::decode_base64(&header.nonce, "nonce")
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or(Rejection::Malformed)?;
        let key = message_key(&peer_key.shared, &header).map_err(|_| Rejection::Malformed)?;
        let mut body = body.to_vec();
        let plaintext_len = key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(header_bytes),
                &mut body,
            )
            .map_err(|_| Rejection::Forged)?
            .len();
        body.truncate(plaintext_len);
        Ok(Opened {
            header,
            plaintext: body,
        })
    }

    fn sender_key<'p>(&self, peer: &'p Peer, header: &Header) -> Result<&'p PeerKey, Rejection> {
        let (theirs, mine) = header.key_id.split_once('.').ok_or(Rejection::Malformed)?;
        if mine != self.my_key_id {
            return Err(Rejection::UnknownKey);
        }
        peer.keys.get(theirs).ok_or(Rejection::UnknownKey)
    }

    /// The tag of one chunk of a large message for `to`: `<sender key id>.<recipient key id>:`
    /// and the base64 HMAC-SHA256 of `(seq, idx, total, data)` under a key derived from the
    /// pair's static secret for this computation and direction. Deterministic, so a re-sent chunk
    /// is byte-identical; it lets the recipient authenticate a chunk before storing it.
    pub fn chunk_tag(&self, computation: Uuid, to: &str, chunk: &ChunkId, data: &[u8]) -> Result<String, Error> {
        let peer = self
            .peers
            .get(to)
            .ok_or_else(|| Error::Crypto(format!("no roster key for party {to:?}")))?;
        let key_id = format!("{}.{}", self.my_key_id, peer.newest);
        let key = chunk_key(&peer.keys[&peer.newest].shared, computation, &self.me, to, &key_id)?;
        let tag = hmac::sign(&key, &chunk.signed_bytes(data));
        Ok(format!("{key_id}:{}", keys::encode_base64(tag.as_ref())))
    }

    /// Checks a chunk that arrived on `fsc.<computation>.<me>.<from>` against its tag.
    pub fn verify_chunk(
        &self,
        computation: Uuid,
        from: &str,
        chunk: &ChunkId,
        data: &[u8],
        tag: &str,
    ) -> Result<(), Rejection> {
        let peer = self.peers.get(from).ok_or(Rejection::UnknownSender)?;
        let (key_id, tag) = tag.split_once(':').ok_or(Rejection::Malformed)?;
        let (theirs, mine) = key_id.split_once('.').ok_or(Rejection::Malformed)?;
        if mine != self.my_key_id {
            return Err(Rejection::UnknownKey);
        }
        let peer_key = peer.keys.get(theirs).ok_or(Rejection::UnknownKey)?;
        let tag = keys::decode_base64(tag, "chunk tag").map_err(|_| Rejection::Malformed)?;
        let key = chunk_key(&peer_key.shared, computation, from, &self.me, key_id).map_err(|_| Rejection::Malformed)?;
        hmac::verify(&key, &chunk.signed_bytes(data), &tag).map_err(|_| Rejection::Forged)
    }

    /// This party's mask seeds for the secure sums of `computation` among `participants` (in
    /// engine order, this node among them): per pair, HKDF-SHA256 over the pair's static secret
    /// (salt: the computation id; info: "fsc/sum-mask/v1", the definition digest, both parties
    /// and both key ids, the lower engine index first, so both ends derive the same seed). The
    /// label keeps seeds independent of every envelope key. The agreement covers the digest and
    /// every participant's key as this node sees it: parties that disagree on a key would
    /// compute masks that do not cancel, and the sum refuses their vectors instead.
    pub fn mask_seeds(&self, computation: Uuid, digest: &[u8; 32], participants: &[String]) -> Result<Masks, Error> {
        if !self.my_key_is_newest {
            return Err(Error::Crypto(format!(
                "this node runs key {:?}, not the newest key of {:?} in the roster",
                self.my_key_id, self.me
            )));
        }
        let mut agreement = digest::Context::new(&digest::SHA256);
        agreement.update(b"fsc/sum-agreement/v1\0");
        agreement.update(digest);
        let mut seeds = Vec::with_capacity(participants.len());
        let me = participants
            .iter()
            .position(|p| *p == self.me)
            .ok_or_else(|| Error::Crypto("this node is not a participant".into()))?;
        for (index, party) in participants.iter().enumerate() {
            let (key_id, public, seed) = if index == me {
                (&self.my_key_id, self.my_public, [0; 32])
            } else {
                let peer = self
                    .peers
                    .get(party)
                    .ok_or_else(|| Error::Crypto(format!("no roster key for party {party:?}")))?;
                let key = &peer.keys[&peer.newest];
                let (low, high) = if me < index {
                    ((&self.me, &self.my_key_id), (party, &peer.newest))
                } else {
                    ((party, &peer.newest), (&self.me, &self.my_key_id))
                };
                (
                    &peer.newest,
                    key.x25519,
                    mask_seed(&key.shared, computation, digest, low, high)?,
                )
            };
            let parts: [&[u8]; 5] = [party.as_bytes(), b"\0", key_id.as_bytes(), b"\0", &public];
            for part in parts {
                agreement.update(part);
            }
            seeds.push(seed);
        }
        let agreement = agreement.finish();
        let first: [u8; 8] = agreement.as_ref()[..8].try_into().expect("a SHA-256 digest");
        Ok(Masks::new(seeds, u64::from_be_bytes(first)))
    }

    /// The plaintext of an abort: what the other parties are told, signed with our Ed25519 key.
    pub fn abort_body(&self, computation: Uuid, reason: &Announced) -> Vec<u8> {
        let signature = self.keys.sign(&abort_signed_bytes(computation, &self.me, reason));
        serde_json::to_vec(&SignedAbort {
            reason: reason.clone(),
            signature: keys::encode_base64(&signature),
        })
        .expect("aborts serialise")
    }

    /// Checks an abort's signature against the sender's roster key.
    pub fn verify_abort(&self, opened: &Opened) -> Result<Announced, Rejection> {
        let signed: SignedAbort = serde_json::from_slice(&opened.plaintext).map_err(|_| Rejection::Malformed)?;
        let peer = self.peers.get(&opened.header.from).ok_or(Rejection::UnknownSender)?;
        let public = self.sender_key(peer, &opened.header)?.ed25519;
        let signature = keys::decode_base64(&signed.signature, "signature").map_err(|_| Rejection::Malformed)?;
        let message = abort_signed_bytes(opened.header.computation, &opened.header.from, &signed.reason);
        if keys::verify(&public, &message, &signature) {
            Ok(signed.reason)
        } else {
            Err(Rejection::BadSignature)
        }
    }
}

impl Envelopes {
    /// This node's signatures over `statements`, by its roster key, one Ed25519 signature for
    /// all (`Signed::sign_all`): its receipt rows and the entries of its `receipt` messages.
    pub fn sign_receipts(&self, statements: &[Statement]) -> Vec<Signed> {
        Signed::sign_all(statements, &self.keys, &self.my_key_id, &self.me)
    }

    /// Checks peer `party`'s receipt signature for `computation` against the roster key it
    /// names. Stored signatures are checked here as a receipt is read, not as they arrive: a
    /// check costs more than the rest of a small computation, and most receipts are never read.
    pub fn verify_receipt(&self, computation: Uuid, party: &str, signed: &Signed) -> Result<(), Rejection> {
        let statement = signed.statement(computation).ok_or(Rejection::Malformed)?;
        let peer = self.peers.get(party).ok_or(Rejection::UnknownSender)?;
        let key = peer.keys.get(&signed.key_id).ok_or(Rejection::UnknownKey)?;
        if signed.holds(&statement, &key.ed25519, party) {
            Ok(())
        } else {
            Err(Rejection::BadSignature)
        }
    }
}

/// An abort's plaintext: what the other parties are told ([`Announced`]), signed.
#[derive(Serialize, Deserialize)]
pub struct SignedAbort {
    pub reason: Announced,
    signature: String,
}

fn abort_signed_bytes(computation: Uuid, from: &str, reason: &Announced) -> Vec<u8> {
    let mut bytes = b"fsc/abort/v2\0".to_vec();
    bytes.extend_from_slice(computation.as_bytes());
    for part in [from, &reason.code, reason.culprit.as_deref().unwrap_or_default()] {
        bytes.extend_from_slice(part.as_bytes());
        bytes.push(0);
    }
    bytes
}

/// Where a chunk belongs: the sequence number of its message and its place among the chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkId {
    pub seq: u64,
    pub idx: u32,
    pub total: u32,
}

impl ChunkId {
    fn signed_bytes(&self, data: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(32 + data.len());
        bytes.extend_from_slice(b"fsc/chunk/v1\0");
        bytes.extend_from_slice(&self.seq.to_be_bytes());
        bytes.extend_from_slice(&self.idx.to_be_bytes());
        bytes.extend_from_slice(&self.total.to_be_bytes());
        bytes.extend_from_slice(data);
        bytes
    }
}

/// The chunk MAC key of one computation and direction: HKDF like the message key, with its own
/// label, so it is independent of every AEAD key.
fn chunk_key(shared: &[u8; 32], computation: Uuid, from: &str, to: &str, key_id: &str) -> Result<hmac::Key, Error> {
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, computation.as_bytes());
    let info: [&[u8]; 7] = [
        b"fsc/chunk-mac/v1",
        b"\0",
        from.as_bytes(),
        b"\0",
        to.as_bytes(),
        b"\0",
        key_id.as_bytes(),
    ];
    let prk = salt.extract(shared);
    let okm = prk
        .expand(&info, hmac::HMAC_SHA256)
        .map_err(|_| Error::Crypto("key derivation failed".into()))?;
    Ok(hmac::Key::from(okm))
}

/// One pair's mask seed for one computation (see [`Envelopes::mask_seeds`]); `low` and `high`
/// are (party, key id) of the lower and the higher engine index.
fn mask_seed(
    shared: &[u8; 32],
    computation: Uuid,
    digest: &[u8; 32],
    low: (&String, &String),
    high: (&String, &String),
) -> Result<Seed, Error> {
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, computation.as_bytes());
    let info: [&[u8]; 11] = [
        b"fsc/sum-mask/v1",
        b"\0",
        digest,
        low.0.as_bytes(),
        b"\0",
        high.0.as_bytes(),
        b"\0",
        low.1.as_bytes(),
        b"\0",
        high.1.as_bytes(),
        b"\0",
    ];
    let mut seed = [0u8; 32];
    salt.extract(shared)
        .expand(&info, SeedLength)
        .and_then(|okm| okm.fill(&mut seed))
        .map_err(|_| Error::Crypto("key derivation failed".into()))?;
    Ok(seed)
}

/// HKDF output of one seed's length.
struct SeedLength;

impl hkdf::KeyType for SeedLength {
    fn len(&self) -> usize {
        32
    }
}

fn split_wire(wire: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u16::from_be_bytes(wire.get(..2)?.try_into().ok()?) as usize;
    let header = wire.get(2..2 + len)?;
    Some((header, &wire[2 + len..]))
}

/// Peeks at the header without authenticating it (for routing chunks before reassembly).
pub fn peek_header(wire: &[u8]) -> Option<Header> {
    serde_json::from_slice(split_wire(wire)?.0).ok()
}

fn message_key(shared: &[u8; 32], header: &Header) -> Result<aead::LessSafeKey, Error> {
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, header.computation.as_bytes());
    let info: [&[u8]; 7] = [
        b"fsc/v1",
        b"\0",
        header.from.as_bytes(),
        b"\0",
        header.to.as_bytes(),
        b"\0",
        header.key_id.as_bytes(),
    ];
    let prk = salt.extract(shared);
    let okm = prk
        .expand(&info, &aead::CHACHA20_POLY1305)
        .map_err(|_| Error::Crypto("key derivation failed".into()))?;
    Ok(aead::LessSafeKey::new(aead::UnboundKey::from(okm)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::roster::test_roster;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn sealed_messages_open_only_as_sent() {
        let (roster, mut keys) = test_roster(&["alice", "bob", "carol"]);
        let alice = Envelopes::new("alice", keys.remove(0), &roster).unwrap();
        let bob = Envelopes::new("bob", keys.remove(0), &roster).unwrap();
        let carol = Envelopes::new("carol", keys.remove(0), &roster).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let c = Uuid::new_v4();
        let wire = alice.seal(c, "bob", 3, Kind::Data, b"secret share", &mut rng).unwrap();
        let opened = bob.open(&c.to_string(), "alice", &wire).unwrap();
        assert_eq!(opened.plaintext, b"secret share");
        assert_eq!((opened.header.seq, opened.header.kind), (3, Kind::Data));

        assert_eq!(
            carol.open(&c.to_string(), "alice", &wire).unwrap_err(),
            Rejection::Misaddressed
        );
        assert_eq!(
            bob.open(&Uuid::new_v4().to_string(), "alice", &wire).unwrap_err(),
            Rejection::Misrouted
        );
        assert_eq!(
            bob.open(&c.to_string(), "carol", &wire).unwrap_err(),
            Rejection::Misrouted
        );
        let mut tampered = wire.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(
            bob.open(&c.to_string(), "alice", &tampered).unwrap_err(),
            Rejection::Forged
        );
        // Changing the clear header (here: the sequence number) breaks authentication too.
        let text = String::from_utf8_lossy(&wire[2..]).replace("\"seq\":3", "\"seq\":4");
        let mut relabelled = wire[..2].to_vec();
        relabelled.extend_from_slice(text.as_bytes());
        assert_eq!(
            bob.open(&c.to_string(), "alice", &relabelled).unwrap_err(),
            Rejection::Forged
        );
        assert_eq!(
            bob.open(&c.to_string(), "alice", b"\x00").unwrap_err(),
            Rejection::Malformed
        );
    }

    #[test]
    fn chunks_are_authenticated_for_their_place_direction_and_computation() {
        let (roster, mut keys) = test_roster(&["alice", "bob", "carol"]);
        let alice = Envelopes::new("alice", keys.remove(0), &roster).unwrap();
        let bob = Envelopes::new("bob", keys.remove(0), &roster).unwrap();
        let carol = Envelopes::new("carol", keys.remove(0), &roster).unwrap();
        let c = Uuid::new_v4();
        let chunk = ChunkId {
            seq: 4,
            idx: 1,
            total: 3,
        };
        let tag = alice.chunk_tag(c, "bob", &chunk, b"piece").unwrap();
        assert_eq!(
            tag,
            alice.chunk_tag(c, "bob", &chunk, b"piece").unwrap(),
            "deterministic"
        );
        assert_eq!(bob.verify_chunk(c, "alice", &chunk, b"piece", &tag), Ok(()));
        let other = ChunkId { idx: 2, ..chunk };
        for (computation, from, chunk, data) in [
            (c, "alice", &chunk, &b"pieced"[..]),
            (c, "alice", &other, b"piece"),
            (Uuid::new_v4(), "alice", &chunk, b"piece"),
            (c, "carol", &chunk, b"piece"),
        ] {
            assert_eq!(
                bob.verify_chunk(computation, from, chunk, data, &tag),
                Err(Rejection::Forged)
            );
        }
        assert_eq!(
            carol.verify_chunk(c, "alice", &chunk, b"piece", &tag),
            Err(Rejection::Forged)
        );
        assert_eq!(
            bob.verify_chunk(c, "alice", &chunk, b"piece", "k1.k1:AAAA"),
            Err(Rejection::Forged)
        );
        assert_eq!(
            bob.verify_chunk(c, "alice", &chunk, b"piece", "junk"),
            Err(Rejection::Malformed)
        );
    }

    /// Both ends of a pair derive the same seed, every computation and definition its own, and
    /// the seeds of all parties make an engine sum come out right.
    #[test]
    fn mask_seeds_pair_up_and_never_repeat_across_computations() {
        let names = ["alice", "bob", "carol"];
        let (roster, keys) = test_roster(&names);
        let parties: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let envelopes: Vec<Envelopes> = keys
            .into_iter()
            .zip(names)
            .map(|(k, n)| Envelopes::new(n, k, &roster).unwrap())
            .collect();
        let (c, digest) = (Uuid::new_v4(), [9u8; 32]);
        let masks: Vec<Masks> = envelopes
            .iter()
            .map(|e| e.mask_seeds(c, &digest, &parties).unwrap())
            .collect();
        let instance = fsc_simon::masks::Instance::default();
        let mask = |m: &Masks, peer| m.mask::<1>(peer, instance, 1)[0];
        for (i, j) in [(0, 1), (0, 2), (1, 2)] {
            assert_eq!(mask(&masks[i], j), mask(&masks[j], i), "pair {i}, {j}");
        }
        assert!(masks.iter().all(|m| m.agreement() == masks[0].agreement()));
        let mut seen = std::collections::HashSet::new();
        for (id, digest) in [(c, digest), (Uuid::new_v4(), digest), (c, [8; 32])] {
            let other = envelopes[0].mask_seeds(id, &digest, &parties).unwrap();
            assert!(seen.insert(mask(&other, 1)), "{id} repeats a mask");
            assert!(seen.insert(mask(&other, 2)), "{id} repeats a mask");
        }
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let spec = fsc_simon::Spec::new("SecureSum", &serde_json::Value::Null, 3).unwrap();
        let mut machines: Vec<_> = (0..3)
            .map(|me| spec.machine(me, &serde_json::json!(me + 1)).unwrap())
            .collect();
        let mut sent = Vec::new();
        for (me, machine) in machines.iter_mut().enumerate() {
            let step = machine.start(&mut rng, &masks[me]).unwrap();
            sent.extend(step.outgoing.into_iter().map(|(to, bytes)| (me, to, bytes)));
        }
        let mut outputs = Vec::new();
        for (from, to, bytes) in sent {
            let step = machines[to].receive(from, &bytes, &mut rng, &masks[to]).unwrap();
            outputs.extend(step.output);
        }
        assert_eq!(outputs.len(), 3);
        assert!(outputs.iter().all(|o| o["result"]["sum"] == 6.0), "{outputs:?}");
    }

    #[test]
    fn aborts_are_signed_by_the_sender() {
        let (roster, mut keys) = test_roster(&["alice", "bob"]);
        let alice = Envelopes::new("alice", keys.remove(0), &roster).unwrap();
        let bob = Envelopes::new("bob", keys.remove(0), &roster).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let c = Uuid::new_v4();
        let reason = Announced {
            code: "invalid_input".into(),
            culprit: Some("alice".into()),
            rule: None,
        };
        let wire = alice
            .seal(c, "bob", 0, Kind::Abort, &alice.abort_body(c, &reason), &mut rng)
            .unwrap();
        let opened = bob.open(&c.to_string(), "alice", &wire).unwrap();
        assert_eq!(bob.verify_abort(&opened).unwrap(), reason);
        let mut forged = opened.clone();
        forged.plaintext = serde_json::to_vec(
            &serde_json::json!({"reason": {"code": "x"}, "signature": keys::encode_base64(&[0; 64])}),
        )
        .unwrap();
        assert_eq!(bob.verify_abort(&forged).unwrap_err(), Rejection::BadSignature);
    }

    #[test]
    fn only_the_senders_receipt_signature_verifies() {
        let (roster, mut keys) = test_roster(&["alice", "bob"]);
        let alice = Envelopes::new("alice", keys.remove(0), &roster).unwrap();
        let bob = Envelopes::new("bob", keys.remove(0), &roster).unwrap();
        let c = Uuid::new_v4();
        let statement = Statement {
            computation: c,
            definition_digest: [1; 32],
            outcome: crate::receipt::Outcome::Succeeded,
            outcome_digest: [2; 32],
        };
        let signed = alice.sign_receipts(&[statement]).remove(0);
        assert_eq!(bob.verify_receipt(c, "alice", &signed), Ok(()));
        // For another computation, bob's signature passed off as alice's, alice's over another
        // statement, by a key she does not hold: rejected.
        assert_eq!(
            bob.verify_receipt(Uuid::new_v4(), "alice", &signed),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            bob.verify_receipt(c, "alice", &bob.sign_receipts(&[statement])[0]),
            Err(Rejection::BadSignature)
        );
        let mut other = signed.clone();
        other.outcome_digest = crate::audit::hex(&[3; 32]);
        assert_eq!(bob.verify_receipt(c, "alice", &other), Err(Rejection::BadSignature));
        other.key_id = "k9".into();
        assert_eq!(bob.verify_receipt(c, "alice", &other), Err(Rejection::UnknownKey));
        other.outcome_digest = "zz".into();
        assert_eq!(bob.verify_receipt(c, "alice", &other), Err(Rejection::Malformed));
    }
}
