//! Bisection: the search for the smallest 64-bit key at which a monotone predicate over the
//! parties' data turns true (a minimum: "some value ≤ t"; a k-th element: "at least k values
//! ≤ t"). Each round tests 2^b − 1 thresholds at once, splitting the interval into 2^b parts,
//! so 64/b rounds find any key. This module owns the interval arithmetic only; how a predicate
//! is evaluated securely is the protocol's.

use serde::{Deserialize, Serialize};

/// The most bits a round may narrow: 255 thresholds.
pub const MAX_BITS_PER_ROUND: u32 = 8;

/// An interval of keys known to hold the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Search {
    lo: u64,
    hi: u64,
}

impl Default for Search {
    fn default() -> Self {
        Search::new()
    }
}

impl Search {
    /// The whole key space: the predicate must hold at `u64::MAX`.
    pub fn new() -> Search {
        Search { lo: 0, hi: u64::MAX }
    }

    /// The answer, once the interval is a single key.
    pub fn found(&self) -> Option<u64> {
        (self.lo == self.hi).then_some(self.lo)
    }

    fn parts(&self, bits: u32) -> u128 {
        (1u128 << bits).min(u128::from(self.hi - self.lo) + 1)
    }

    /// The thresholds of the next round: the upper ends of all parts but the last; empty once
    /// found.
    pub fn thresholds(&self, bits: u32) -> Vec<u64> {
        assert!((1..=MAX_BITS_PER_ROUND).contains(&bits), "1 to 8 bits per round");
        let size = u128::from(self.hi - self.lo) + 1;
        let parts = self.parts(bits);
        (1..parts).map(|j| self.lo + (size * j / parts - 1) as u64).collect()
    }

    /// Narrows to the part where the predicate turns true, given its value at each threshold of
    /// [`Search::thresholds`] (false below the answer, true from it on).
    pub fn narrow(&mut self, bits: u32, holds: &[bool]) {
        let thresholds = self.thresholds(bits);
        assert_eq!(thresholds.len(), holds.len(), "one answer per threshold");
        let first = holds.iter().position(|&h| h);
        let below = first.map_or(thresholds.len(), |j| j);
        if let Some(j) = first {
            self.hi = thresholds[j];
        }
        if below > 0 {
            self.lo = thresholds[below - 1] + 1;
        }
    }

    /// How many rounds a search takes at most: ⌈64 / bits⌉.
    pub fn rounds(bits: u32) -> u32 {
        64u32.div_ceil(bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    #[test]
    fn every_key_is_found_in_the_promised_number_of_rounds() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let targets = [0, 1, u64::MAX, u64::MAX - 1, 1 << 63, rng.next_u64(), rng.next_u64()];
        for bits in 1..=MAX_BITS_PER_ROUND {
            for &target in &targets {
                let mut search = Search::new();
                let mut rounds = 0;
                while search.found().is_none() {
                    let holds: Vec<bool> = search.thresholds(bits).iter().map(|&t| t >= target).collect();
                    search.narrow(bits, &holds);
                    rounds += 1;
                }
                assert_eq!(search.found(), Some(target), "bits {bits}");
                assert!(rounds <= Search::rounds(bits), "bits {bits}: {rounds} rounds");
            }
        }
    }
}
