//! Pairwise masks: what hides a party's input in a secure sum ([`crate::sum::additive_sum`]).
//!
//! Every pair of parties i < j shares a 32-byte seed for the computation. The runtime derives it
//! (HKDF over the pair's static X25519 secret, bound to the computation id, its definition digest
//! and both key ids); the engine only expands it, so it stays pure. The mask of one sum is
//! ChaCha20 keyed with the seed, its 64-bit nonce the sum's [`Instance`] (sub-protocol sequence
//! and round), read as ring elements: m_ij = PRF(seed_ij, instance). Party i adds m_ij for every
//! j > i and subtracts m_ji for every j < i, so the masks cancel in the sum of all parties'
//! vectors. Two sums of one computation never share a stream (their instances differ), nor do two
//! computations (their seeds differ); the runtime never accepts a computation id twice.
//!
//! This module also fixes how a sum travels (the switch rule, [`Masks::aggregator`]) and the
//! `agreement` every party must derive identically: a party that derived its seeds from other
//! keys than the others (a stale roster) would make the masks not cancel, so every masked vector
//! carries it and a mismatch fails the computation instead of giving a wrong sum.

use crate::z2k::Zk;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// One pair's mask seed for one computation.
pub type Seed = [u8; 32];

/// From this many parties on, a sum goes through an aggregator (2(n−1) messages, two hops)
/// rather than all-to-all (n(n−1) messages, one hop): one hop is worth at most twice the
/// messages, and n(n−1) ≤ 2·2(n−1) exactly while n ≤ 4.
pub const AGGREGATE_FROM: usize = 5;

/// Which sum of a computation a mask belongs to: the sequence of sums it is part of (a protocol
/// that runs two sequences numbers them apart) and its round within the sequence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Instance {
    pub sequence: u32,
    pub round: u32,
}

impl Instance {
    fn nonce(self) -> u64 {
        (u64::from(self.sequence) << 32) | u64::from(self.round)
    }
}

/// The mask seeds one party holds for one computation, handed to every engine step by the
/// runtime (never stored with the engine's state).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Masks {
    /// One seed per participant, by party index; the entry of the party itself is unused.
    seeds: Vec<Seed>,
    /// The same at every party that derived its seeds from the same definition and keys.
    agreement: u64,
}

/// Where no seeds are: steps of protocols that sum nothing.
pub(crate) static NO_MASKS: Masks = Masks {
    seeds: Vec::new(),
    agreement: 0,
};

impl Masks {
    /// `seeds[j]` is the seed shared with party j (ignored for the party itself); `agreement`
    /// is a digest of the definition and of every participant's key, the same at every party.
    pub fn new(seeds: Vec<Seed>, agreement: u64) -> Masks {
        Masks { seeds, agreement }
    }

    /// Seeds for every party of a computation, drawn from `rng`, as a dealer would hand them
    /// out: for simulations and tests, where no keys exist.
    pub fn dealt(parties: usize, rng: &mut dyn RngCore) -> Vec<Masks> {
        let mut pairs = vec![vec![[0u8; 32]; parties]; parties];
        for (i, j) in (0..parties).flat_map(|i| (i + 1..parties).map(move |j| (i, j))) {
            let mut seed = [0u8; 32];
            rng.fill_bytes(&mut seed);
            pairs[i][j] = seed;
            pairs[j][i] = seed;
        }
        let agreement = rng.next_u64();
        pairs.into_iter().map(|seeds| Masks::new(seeds, agreement)).collect()
    }

    pub fn agreement(&self) -> u64 {
        self.agreement
    }

    /// Whether seeds for all `parties` are here.
    pub fn covers(&self, parties: usize) -> bool {
        self.seeds.len() >= parties
    }

    /// The aggregator of every sum among `parties` parties of this computation, or `None` when
    /// they send all-to-all. It rotates with the computation (the agreement covers its id).
    pub fn aggregator(&self, parties: usize) -> Option<usize> {
        (parties >= AGGREGATE_FROM).then(|| (self.agreement % parties as u64) as usize)
    }

    /// The mask m_ij of the pair (me, peer) for `instance`, `len` ring elements.
    pub fn mask<const L: usize>(&self, peer: usize, instance: Instance, len: usize) -> Vec<Zk<L>> {
        let mut stream = ChaCha20Rng::from_seed(self.seeds[peer]);
        stream.set_stream(instance.nonce());
        (0..len).map(|_| Zk::random(&mut stream)).collect()
    }

    /// Adds party `me`'s masks for `instance` to its vector among `parties` parties.
    pub fn apply<const L: usize>(&self, me: usize, parties: usize, instance: Instance, vector: &mut [Zk<L>]) {
        for peer in (0..parties).filter(|&peer| peer != me) {
            let mask = self.mask::<L>(peer, instance, vector.len());
            if peer > me {
                vector.iter_mut().zip(mask).for_each(|(v, m)| *v += m);
            } else {
                vector.iter_mut().zip(mask).for_each(|(v, m)| *v -= m);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::z2k::Z256;
    use std::collections::HashSet;

    #[test]
    fn the_masks_of_all_parties_cancel() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for parties in 2..=20 {
            let masks = Masks::dealt(parties, &mut rng);
            let instance = Instance { sequence: 0, round: 3 };
            let mut total = vec![Z256::ZERO; 2];
            for (me, masks) in masks.iter().enumerate() {
                let mut vector = vec![Z256::ZERO; 2];
                masks.apply(me, parties, instance, &mut vector);
                assert_ne!(vector, [Z256::ZERO; 2], "party {me} of {parties} is masked");
                total.iter_mut().zip(vector).for_each(|(t, v)| *t += v);
            }
            assert_eq!(total, [Z256::ZERO; 2], "{parties} parties");
        }
    }

    #[test]
    fn the_same_seeds_never_give_the_same_mask_for_two_instances() {
        let masks = Masks::new(vec![[0; 32], [7; 32]], 0);
        let mut seen = HashSet::new();
        for sequence in 0..20 {
            for round in 0..50 {
                let mask = masks.mask::<1>(1, Instance { sequence, round }, 4);
                assert!(seen.insert(mask), "sequence {sequence} round {round} repeats a mask");
            }
        }
        // A round's mask is not a shifted piece of another round's stream either.
        let long = masks.mask::<1>(1, Instance { sequence: 0, round: 0 }, 1000);
        let words: HashSet<_> = long.iter().collect();
        for round in 1..50 {
            let mask = masks.mask::<1>(1, Instance { sequence: 0, round }, 4);
            assert!(mask.iter().all(|m| !words.contains(m)), "round {round}");
        }
    }

    #[test]
    fn the_aggregator_takes_over_from_five_parties_and_rotates() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        assert_eq!(Masks::dealt(4, &mut rng)[0].aggregator(4), None);
        let chosen: HashSet<_> = (0..200)
            .map(|_| Masks::dealt(5, &mut rng)[0].aggregator(5).unwrap())
            .collect();
        assert_eq!(chosen.len(), 5, "every party aggregates some computations");
    }
}
