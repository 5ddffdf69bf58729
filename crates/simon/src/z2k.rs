//! The ring Z_2^256 in which additive shares live.
//!
//! A share is a uniformly random element of this ring, so a single share (or any n−1 of n shares)
//! carries no information about the shared value: this is what makes the sharing perfectly hiding,
//! unlike the reference's masks below 10^24 over the integers (REFERENCE.md §6 W1). 256 bits are
//! enough for every input the engine accepts: fixed-point values are limited to ±2^240 per party
//! and computations to 2^14 parties, so sums never wrap. This module owns the arithmetic and the
//! conversions to and from signed big integers; it knows nothing of fixed point or protocols.

use num_bigint::{BigInt, BigUint, Sign};
use rand_core::RngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::ops::{Add, AddAssign, Mul, Neg, Sub, SubAssign};

/// An element of Z_2^256, as four little-endian 64-bit limbs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Z256([u64; 4]);

impl Z256 {
    pub const ZERO: Z256 = Z256([0; 4]);

    /// A uniformly random element: 32 bytes straight from the RNG.
    pub fn random(rng: &mut dyn RngCore) -> Z256 {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Z256::from_le_bytes(bytes)
    }

    pub fn from_le_bytes(bytes: [u8; 32]) -> Z256 {
        let mut limbs = [0u64; 4];
        for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
            *limb = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
        }
        Z256(limbs)
    }

    pub fn to_le_bytes(self) -> [u8; 32] {
        let mut bytes = [0u8; 32];
        for (chunk, limb) in bytes.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        bytes
    }

    pub fn from_u64(value: u64) -> Z256 {
        Z256([value, 0, 0, 0])
    }

    /// The residue of `value` modulo 2^256, without a detour through big integers: matrix
    /// protocols encode millions of entries.
    pub fn from_i128(value: i128) -> Z256 {
        let low = value as u128;
        let high = if value < 0 { u64::MAX } else { 0 };
        Z256([low as u64, (low >> 64) as u64, high, high])
    }

    /// The residue of `value` modulo 2^256 (two's complement for negative values).
    pub fn from_bigint(value: &BigInt) -> Z256 {
        let magnitude = value.magnitude().to_bytes_le();
        let mut bytes = [0u8; 32];
        for (dst, src) in bytes.iter_mut().zip(magnitude.iter()) {
            *dst = *src;
        }
        let residue = Z256::from_le_bytes(bytes);
        if value.sign() == Sign::Minus { -residue } else { residue }
    }

    /// The representative in [−2^255, 2^255).
    pub fn to_signed_bigint(self) -> BigInt {
        let negative = self.0[3] >> 63 == 1;
        if negative {
            let magnitude = BigUint::from_bytes_le(&(-self).to_le_bytes());
            BigInt::from_biguint(Sign::Minus, magnitude)
        } else {
            BigInt::from_biguint(Sign::Plus, BigUint::from_bytes_le(&self.to_le_bytes()))
        }
    }

    /// The representative in [0, 2^64) if it is small, e.g. a count.
    pub fn to_u64(self) -> Option<u64> {
        (self.0[1] == 0 && self.0[2] == 0 && self.0[3] == 0).then_some(self.0[0])
    }

    fn to_hex(self) -> String {
        self.0.iter().rev().map(|limb| format!("{limb:016x}")).collect()
    }

    fn from_hex(text: &str) -> Option<Z256> {
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut limbs = [0u64; 4];
        for (i, limb) in limbs.iter_mut().rev().enumerate() {
            *limb = u64::from_str_radix(&text[i * 16..(i + 1) * 16], 16).ok()?;
        }
        Some(Z256(limbs))
    }
}

impl Add for Z256 {
    type Output = Z256;
    fn add(self, rhs: Z256) -> Z256 {
        let mut out = [0u64; 4];
        let mut carry = false;
        for (i, limb) in out.iter_mut().enumerate() {
            let (sum, c1) = self.0[i].overflowing_add(rhs.0[i]);
            let (sum, c2) = sum.overflowing_add(carry as u64);
            *limb = sum;
            carry = c1 || c2;
        }
        Z256(out)
    }
}

impl Neg for Z256 {
    type Output = Z256;
    fn neg(self) -> Z256 {
        let inverted = Z256(self.0.map(|limb| !limb));
        inverted + Z256::from_u64(1)
    }
}

impl Sub for Z256 {
    type Output = Z256;
    fn sub(self, rhs: Z256) -> Z256 {
        self + (-rhs)
    }
}

/// The product modulo 2^256: schoolbook on 64-bit limbs, dropping every partial product at or
/// above 2^256 (ten 64×64-bit multiplications).
impl Mul for Z256 {
    type Output = Z256;
    fn mul(self, rhs: Z256) -> Z256 {
        let (a, b) = (self.0, rhs.0);
        let mut out = [0u64; 4];
        for i in 0..4 {
            let mut carry = 0u128;
            for j in 0..4 - i {
                let t = a[i] as u128 * b[j] as u128 + out[i + j] as u128 + carry;
                out[i + j] = t as u64;
                carry = t >> 64;
            }
        }
        Z256(out)
    }
}

impl AddAssign for Z256 {
    fn add_assign(&mut self, rhs: Z256) {
        *self = *self + rhs;
    }
}

impl SubAssign for Z256 {
    fn sub_assign(&mut self, rhs: Z256) {
        *self = *self - rhs;
    }
}

/// Serialised as 64 lower-case hex digits (most significant first): compact in JSON and
/// unambiguous, where a JSON number would need arbitrary precision on every reader.
impl Serialize for Z256 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Z256 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Z256, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Z256::from_hex(&text).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits (an element of Z_2^256)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_integer::Integer;
    use num_traits::One;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn addition_wraps_modulo_2_256() {
        let max = Z256([u64::MAX; 4]);
        assert_eq!(max + Z256::from_u64(1), Z256::ZERO);
        assert_eq!(Z256::ZERO - Z256::from_u64(1), max);
    }

    #[test]
    fn signed_conversions_round_trip() {
        for text in [
            "0",
            "1",
            "-1",
            "1000000000000000000000000000000000000000000",
            "-57896044618658097711785492504343953926634992332820282019728792003956564819968",
        ] {
            let value: BigInt = text.parse().unwrap();
            assert_eq!(Z256::from_bigint(&value).to_signed_bigint(), value, "{text}");
        }
    }

    #[test]
    fn ring_laws_hold_for_random_elements() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for _ in 0..1000 {
            let (a, b) = (Z256::random(&mut rng), Z256::random(&mut rng));
            assert_eq!(a + b - b, a);
            assert_eq!(a + (-a), Z256::ZERO);
            let sum = a.to_signed_bigint() + b.to_signed_bigint();
            assert_eq!(Z256::from_bigint(&sum), a + b);
        }
    }

    #[test]
    fn products_agree_with_big_integers() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let modulus = BigInt::one() << 256u32;
        for _ in 0..1000 {
            let (a, b) = (Z256::random(&mut rng), Z256::random(&mut rng));
            let exact = (a.to_signed_bigint() * b.to_signed_bigint()).mod_floor(&modulus);
            assert_eq!(Z256::from_bigint(&exact), a * b);
        }
        for value in [0i128, 1, -1, i128::MAX, i128::MIN, -12345678901234567890] {
            assert_eq!(Z256::from_i128(value), Z256::from_bigint(&BigInt::from(value)));
        }
    }

    #[test]
    fn serde_is_hex_and_rejects_garbage() {
        let x = Z256::from_u64(255);
        let text = serde_json::to_string(&x).unwrap();
        assert_eq!(text, format!("\"{}ff\"", "0".repeat(62)));
        assert_eq!(serde_json::from_str::<Z256>(&text).unwrap(), x);
        assert!(serde_json::from_str::<Z256>("\"12\"").is_err());
        assert!(serde_json::from_str::<Z256>(&format!("\"{}\"", "g".repeat(64))).is_err());
    }
}
