//! Base oblivious transfers: the "simplest OT" of Chou and Orlandi (Latincrypt 2015, eprint
//! 2015/267) on Ristretto255, [`WIDTH`](super::extension::WIDTH) at once with one sender point.
//!
//! The OT sender draws a and sends A = a·G. For each OT c the receiver, with choice bit s_c,
//! draws b_c and sends B_c = b_c·G + s_c·A; its key is H(c, A, B_c, b_c·A). The sender's keys are
//! k0_c = H(c, A, B_c, a·B_c) and k1_c = H(c, A, B_c, a·(B_c − A)): the one the receiver chose
//! equals its key, the other needs a·b_c·G from A and B_c (computational Diffie-Hellman). B_c is
//! uniform whatever s_c, so the sender learns no choice. H is SHA-256 of a domain, the index, the
//! transcript and the point (the transcript in the hash, as in the later analyses of the
//! protocol), cut to an AES-128 key. Semi-honest security is what fsc needs of it.

use crate::protocol::{PartyIndex, ProtocolError};
use crate::psi::ot::extension::Block;
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable};

const DOMAIN: &[u8] = b"fsc/psi/ot/v1/base";

/// A compressed Ristretto255 point, as it travels.
pub type Point = [u8; 32];

/// A uniform scalar from 64 bytes of the engine's RNG.
pub fn random_scalar(rng: &mut dyn rand_core::RngCore) -> [u8; 32] {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    Scalar::from_bytes_mod_order_wide(&wide).to_bytes()
}

fn scalar(bytes: &[u8; 32]) -> Scalar {
    Scalar::from_bytes_mod_order(*bytes)
}

/// The sender's first message, A = a·G.
pub fn sender_point(secret: &[u8; 32]) -> Point {
    (&scalar(secret) * RISTRETTO_BASEPOINT_TABLE).compress().to_bytes()
}

/// A point that `from` sent: a valid encoding of a point other than the identity (from which
/// the other side's key would follow without any secret).
fn decode(point: &Point, from: PartyIndex) -> Result<RistrettoPoint, ProtocolError> {
    match CompressedRistretto(*point).decompress() {
        Some(p) if p != RistrettoPoint::identity() => Ok(p),
        _ => Err(ProtocolError::Malformed {
            from,
            reason: "a base-OT point that is not a Ristretto255 point, or the identity".into(),
        }),
    }
}

fn key(index: usize, a: &Point, b: &Point, shared: &RistrettoPoint) -> Block {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update((index as u64).to_le_bytes());
    hasher.update(a);
    hasher.update(b);
    hasher.update(shared.compress().as_bytes());
    hasher.finalize()[..16].try_into().expect("16 of 32 bytes")
}

/// The receiver's answer to the sender's point `a` (from party `from`) for the choice bits
/// `choices`: its points B_c and its keys k_{s_c}.
pub fn receive(
    a: &Point,
    choices: &[bool],
    rng: &mut dyn rand_core::RngCore,
    from: PartyIndex,
) -> Result<(Vec<Point>, Vec<Block>), ProtocolError> {
    let a_point = decode(a, from)?;
    let secrets: Vec<[u8; 32]> = choices.iter().map(|_| random_scalar(rng)).collect();
    Ok(choices
        .par_iter()
        .zip(&secrets)
        .enumerate()
        .map(|(c, (&choice, secret))| {
            let b = scalar(secret);
            let plain = &b * RISTRETTO_BASEPOINT_TABLE;
            let point = RistrettoPoint::conditional_select(&plain, &(plain + a_point), Choice::from(u8::from(choice)));
            let encoded = point.compress().to_bytes();
            (encoded, key(c, a, &encoded, &(a_point * b)))
        })
        .unzip())
}

/// The sender's key pairs (k0_c, k1_c) for the receiver's points `points` (from party `from`).
pub fn send(secret: &[u8; 32], points: &[Point], from: PartyIndex) -> Result<Vec<(Block, Block)>, ProtocolError> {
    let a = scalar(secret);
    let a_encoded = sender_point(secret);
    let a_point = decode(&a_encoded, from)?;
    points
        .par_iter()
        .enumerate()
        .map(|(c, encoded)| {
            let b = decode(encoded, from)?;
            Ok((
                key(c, &a_encoded, encoded, &(b * a)),
                key(c, &a_encoded, encoded, &((b - a_point) * a)),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    /// The receiver's key is the sender's key of its choice and not the other; the points do
    /// not depend on the choices in distribution (both kinds decode as points); and a pinned
    /// vector from fixed seeds, so that a change to the construction cannot pass unnoticed.
    #[test]
    fn the_receiver_gets_the_key_it_chose() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let secret = random_scalar(&mut rng);
        let a = sender_point(&secret);
        let choices: Vec<bool> = (0..512).map(|_| rng.next_u32() & 1 == 1).collect();
        let (points, keys) = receive(&a, &choices, &mut rng, 0).unwrap();
        let pairs = send(&secret, &points, 1).unwrap();
        for ((choice, key), (k0, k1)) in choices.iter().zip(&keys).zip(&pairs) {
            assert_eq!(key, if *choice { k1 } else { k0 });
            assert_ne!(key, if *choice { k0 } else { k1 });
        }
        assert_eq!(
            hex(&pairs[0].0),
            "a502455a33b4e5b6bda9077b879d4f16",
            "k0 of OT 0, seeded"
        );
        let identity = RistrettoPoint::identity().compress().to_bytes();
        assert!(receive(&identity, &choices, &mut rng, 0).is_err());
        assert!(send(&secret, &[identity], 1).is_err());
        assert!(send(&secret, &[[0xff; 32]], 1).is_err());
    }

    /// RFC 9496, appendix A.1: the encodings of 2·G and 3·G.
    #[test]
    fn the_first_point_matches_rfc_9496() {
        let mut two = [0u8; 32];
        two[0] = 2;
        assert_eq!(
            hex(&sender_point(&two)),
            "6a493210f7499cd17fecb510ae0cea23a110e8d5b901f8acadd3095c73a3b919"
        );
        two[0] = 3;
        assert_eq!(
            hex(&sender_point(&two)),
            "94741f5d5d52755ece4f23f044ee27d5d1ea1e2bd196b462166b16152a9d0259"
        );
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
