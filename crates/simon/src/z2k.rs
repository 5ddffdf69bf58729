//! The rings Z_2^k in which masked values and shares live: Z_2^64 for counts and OR bits, Z_2^256
//! for fixed-point numbers, and the wide Z_2^2304 in which any sum of doubles is exact ([`ZWide`],
//! see `crate::statistics::reals`).
//!
//! A value plus a uniform (or pseudorandom) mask of this ring is uniform (or indistinguishable from
//! uniform) whatever the value, unlike the reference's masks below 10^24 over the integers
//! (REFERENCE.md §6 W1). 256 bits are
//! enough for every input the engine accepts: fixed-point values are limited to ±2^240 per party
//! and computations to 2^14 parties, so sums never wrap. This module owns the arithmetic and the
//! conversions to and from signed big integers; it knows nothing of fixed point or protocols.
//! Both rings are one type, [`Zk`], over a number of 64-bit limbs.

use num_bigint::{BigInt, BigUint, Sign};
use rand_core::RngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::ops::{Add, AddAssign, Mul, Neg, Sub, SubAssign};

/// An element of Z_2^(64·L), as L little-endian 64-bit limbs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Zk<const L: usize>([u64; L]);

/// Z_2^64: counts (which never reach 2^64 in total) and OR bits (a non-zero OR cancels to zero
/// with probability 2^−64).
pub type Z64 = Zk<1>;

/// Z_2^256: the reference's fixed-point numbers.
pub type Z256 = Zk<4>;

/// Z_2^2304: wide enough for the exact sum of up to 2^179 doubles scaled by 2^1100
/// (`crate::statistics::reals`).
pub type ZWide = Zk<WIDE_LIMBS>;

/// The limbs of [`ZWide`].
pub const WIDE_LIMBS: usize = 36;

impl<const L: usize> Default for Zk<L> {
    fn default() -> Self {
        Zk([0; L])
    }
}

impl<const L: usize> Zk<L> {
    pub const ZERO: Zk<L> = Zk([0; L]);
    const BITS: u64 = 64 * L as u64;

    /// A uniformly random element: 8·L bytes straight from the RNG.
    pub fn random(rng: &mut dyn RngCore) -> Zk<L> {
        let mut limbs = [0u64; L];
        for limb in &mut limbs {
            *limb = rng.next_u64();
        }
        Zk(limbs)
    }

    /// An element drawn uniformly from the non-zero elements: what masks an OR bit.
    pub fn random_nonzero(rng: &mut dyn RngCore) -> Zk<L> {
        loop {
            let value = Zk::random(rng);
            if value != Zk::ZERO {
                return value;
            }
        }
    }

    pub fn from_le_bytes(bytes: &[u8]) -> Zk<L> {
        let mut limbs = [0u64; L];
        for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks(8)) {
            let mut padded = [0u8; 8];
            padded[..chunk.len()].copy_from_slice(chunk);
            *limb = u64::from_le_bytes(padded);
        }
        Zk(limbs)
    }

    pub fn to_le_bytes(self) -> Vec<u8> {
        let mut bytes = vec![0; 8 * L];
        self.write_le_bytes(&mut bytes);
        bytes
    }

    /// Writes the 8·L little-endian bytes into `out`, which must be that long.
    pub fn write_le_bytes(self, out: &mut [u8]) {
        for (chunk, limb) in out.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
    }

    pub fn from_u64(value: u64) -> Zk<L> {
        let mut limbs = [0u64; L];
        limbs[0] = value;
        Zk(limbs)
    }

    /// The residue of `value` modulo 2^(64·L) (two's complement for negative values).
    pub fn from_bigint(value: &BigInt) -> Zk<L> {
        let magnitude = value.magnitude().to_bytes_le();
        let residue = Zk::from_le_bytes(&magnitude[..magnitude.len().min(8 * L)]);
        if value.sign() == Sign::Minus { -residue } else { residue }
    }

    /// The representative in [−2^(64·L−1), 2^(64·L−1)).
    pub fn to_signed_bigint(self) -> BigInt {
        let negative = self.0[L - 1] >> 63 == 1;
        if negative {
            let magnitude = BigUint::from_bytes_le(&(-self).to_le_bytes());
            BigInt::from_biguint(Sign::Minus, magnitude)
        } else {
            BigInt::from_biguint(Sign::Plus, BigUint::from_bytes_le(&self.to_le_bytes()))
        }
    }

    /// The representative in [0, 2^64) if it is small, e.g. a count.
    pub fn to_u64(self) -> Option<u64> {
        self.0[1..].iter().all(|&limb| limb == 0).then_some(self.0[0])
    }

    /// Adds `magnitude · 2^shift` (or subtracts it, if `negative`), exactly, modulo 2^(64·L):
    /// how a double is accumulated without rounding. `shift + 64` must not exceed 64·L.
    pub fn add_shifted(&mut self, magnitude: u64, shift: u32, negative: bool) {
        debug_assert!(u64::from(shift) + 64 <= Self::BITS, "shift out of range");
        let (index, offset) = ((shift / 64) as usize, shift % 64);
        let wide = u128::from(magnitude) << offset;
        let parts = [wide as u64, (wide >> 64) as u64];
        // Only the limbs the term touches, then the carry (or borrow) as far as it runs: a
        // double is accumulated in a few operations, not a pass over all limbs.
        let mut carry = false;
        for (i, limb) in self.0[index..].iter_mut().enumerate() {
            let part = parts.get(i).copied().unwrap_or(0);
            if part == 0 && !carry {
                if i >= parts.len() {
                    break;
                }
                continue;
            }
            let (value, c1) = if negative {
                limb.overflowing_sub(part)
            } else {
                limb.overflowing_add(part)
            };
            let (value, c2) = if negative {
                value.overflowing_sub(u64::from(carry))
            } else {
                value.overflowing_add(u64::from(carry))
            };
            *limb = value;
            carry = c1 || c2;
        }
    }

    /// The largest multiple of 2^bits at most this element (its low bits cleared), as a
    /// residue: well defined modulo 2^(64·L), since 2^bits divides it.
    pub fn round_down(self, bits: u32) -> Zk<L> {
        let mut limbs = self.0;
        for (i, limb) in limbs.iter_mut().enumerate() {
            let low = bits.saturating_sub(64 * i as u32).min(64);
            *limb &= if low == 64 { 0 } else { !((1u64 << low) - 1) };
        }
        Zk(limbs)
    }

    /// The smallest multiple of 2^bits at least this element: −((−x) rounded down).
    pub fn round_up(self, bits: u32) -> Zk<L> {
        -((-self).round_down(bits))
    }

    fn to_hex(self) -> String {
        self.0.iter().rev().map(|limb| format!("{limb:016x}")).collect()
    }

    fn from_hex(text: &str) -> Option<Zk<L>> {
        if text.len() != 16 * L || !text.is_ascii() {
            return None;
        }
        let mut limbs = [0u64; L];
        for (i, limb) in limbs.iter_mut().rev().enumerate() {
            *limb = u64::from_str_radix(&text[i * 16..(i + 1) * 16], 16).ok()?;
        }
        Some(Zk(limbs))
    }
}

impl Z256 {
    /// The residue of `value` modulo 2^256, without a detour through big integers: matrix
    /// protocols encode millions of entries.
    pub fn from_i128(value: i128) -> Z256 {
        let low = value as u128;
        let high = if value < 0 { u64::MAX } else { 0 };
        Zk([low as u64, (low >> 64) as u64, high, high])
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
        Zk(out)
    }
}

impl<const L: usize> Add for Zk<L> {
    type Output = Zk<L>;
    fn add(self, rhs: Zk<L>) -> Zk<L> {
        let mut out = [0u64; L];
        let mut carry = false;
        for (i, limb) in out.iter_mut().enumerate() {
            let (sum, c1) = self.0[i].overflowing_add(rhs.0[i]);
            let (sum, c2) = sum.overflowing_add(carry as u64);
            *limb = sum;
            carry = c1 || c2;
        }
        Zk(out)
    }
}

impl<const L: usize> Neg for Zk<L> {
    type Output = Zk<L>;
    fn neg(self) -> Zk<L> {
        let inverted = Zk(self.0.map(|limb| !limb));
        inverted + Zk::from_u64(1)
    }
}

impl<const L: usize> Sub for Zk<L> {
    type Output = Zk<L>;
    fn sub(self, rhs: Zk<L>) -> Zk<L> {
        self + (-rhs)
    }
}

impl<const L: usize> AddAssign for Zk<L> {
    fn add_assign(&mut self, rhs: Zk<L>) {
        *self = *self + rhs;
    }
}

impl<const L: usize> SubAssign for Zk<L> {
    fn sub_assign(&mut self, rhs: Zk<L>) {
        *self = *self - rhs;
    }
}

/// Serialised as 16·L lower-case hex digits (most significant first): compact in JSON and
/// unambiguous, where a JSON number would need arbitrary precision on every reader.
impl<const L: usize> Serialize for Zk<L> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de, const L: usize> Deserialize<'de> for Zk<L> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Zk<L>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Zk::from_hex(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("expected {} hex digits (an element of Z_2^{})", 16 * L, 64 * L))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_traits::One;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    #[test]
    fn addition_wraps_modulo_2_256() {
        let max = Z256::from_le_bytes(&[0xff; 32]);
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
    fn shifted_doubles_add_up_exactly_in_the_wide_ring() {
        let mut acc = ZWide::ZERO;
        acc.add_shifted(3, 1000, false);
        acc.add_shifted(1, 63, false);
        acc.add_shifted(1, 1000, true);
        let want = (BigInt::from(2) << 1000u32) + (BigInt::one() << 63u32);
        assert_eq!(acc.to_signed_bigint(), want);
        acc.add_shifted(u64::MAX, 2200, true);
        assert_eq!(acc.to_signed_bigint(), want - (BigInt::from(u64::MAX) << 2200u32));
    }

    #[test]
    fn shifted_terms_agree_with_big_integer_arithmetic() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let mut acc = ZWide::ZERO;
        let mut want = BigInt::from(0);
        for _ in 0..2000 {
            let (magnitude, shift, negative) = (
                rng.next_u64() >> (rng.next_u64() % 64),
                (rng.next_u64() % 2240) as u32,
                rng.next_u64() % 2 == 0,
            );
            acc.add_shifted(magnitude, shift, negative);
            let term = BigInt::from(magnitude) << shift;
            want = if negative { want - term } else { want + term };
            assert_eq!(acc, ZWide::from_bigint(&want));
        }
    }

    #[test]
    fn rounding_to_a_power_of_two_grid_is_floor_and_ceiling() {
        let x = Z256::from_bigint(&BigInt::from(1_000_003));
        assert_eq!(x.round_down(4).to_signed_bigint(), BigInt::from(1_000_000));
        assert_eq!(x.round_up(4).to_signed_bigint(), BigInt::from(1_000_016));
        let minus = Z256::from_bigint(&BigInt::from(-1_000_003));
        assert_eq!(minus.round_down(4).to_signed_bigint(), BigInt::from(-1_000_016));
        assert_eq!(minus.round_up(70).to_signed_bigint(), BigInt::from(0));
        let on_grid = Z256::from_bigint(&(BigInt::from(-5) << 80u32));
        assert_eq!((on_grid.round_down(70), on_grid.round_up(70)), (on_grid, on_grid));
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
