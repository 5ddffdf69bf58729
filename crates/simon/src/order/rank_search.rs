//! RankSearch: the building block that finds the values of given ranks (the k-th smallest) in
//! the union of the parties' values, by bisection over the keys of [`crate::order::doubles`].
//!
//! Round 1 sums every party's count together with its counts of values ≤ each threshold of the
//! first bisection round (thresholds do not depend on the rank). The protocol then names the
//! ranks, which may depend on the count (a median), and every further round sums, per rank still
//! searched, the counts of values ≤ each of its thresholds: at most 64 / `bits` rounds in all,
//! all ranks in the same rounds.
//!
//! What each party learns: the number of values, and the number of values ≤ t for each
//! threshold t tested (2^bits − 1 per rank per round); nothing about which party holds what.

use crate::order::bisection::Search;
use crate::protocol::{Io, PartyIndex, Progress, ProtocolError};
use crate::sum::rounds::{self, RoundMessage, Rounds};
use crate::z2k::Z64;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq)]
pub enum RankProgress {
    Continue,
    /// The count is known; call [`RankSearch::set_ranks`].
    NeedRanks(u64),
    /// The keys found, one per rank.
    Done(Vec<u64>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RankSearch {
    bits: u32,
    /// This party's keys, sorted, so that a count below a threshold is a binary search.
    keys: Vec<u64>,
    /// The global counts at the first round's thresholds, until the ranks are known.
    first: Option<Vec<u64>>,
    ranks: Vec<u64>,
    searches: Vec<Search>,
    rounds: Rounds<1>,
}

impl RankSearch {
    pub fn new(bits: u32, mut keys: Vec<u64>) -> RankSearch {
        keys.sort_unstable();
        RankSearch {
            bits,
            keys,
            first: None,
            ranks: Vec::new(),
            searches: Vec::new(),
            rounds: Rounds::new(),
        }
    }

    fn counts_at(&self, thresholds: &[u64]) -> Vec<Z64> {
        thresholds
            .iter()
            .map(|&t| Z64::from_u64(self.keys.partition_point(|&k| k <= t) as u64))
            .collect()
    }

    pub fn start(&mut self, io: &mut Io<'_, RoundMessage<1>>) -> Result<RankProgress, ProtocolError> {
        let thresholds = Search::new().thresholds(self.bits);
        let mut vector = vec![Z64::from_u64(self.keys.len() as u64)];
        vector.extend(self.counts_at(&thresholds));
        let progress = self.rounds.begin(vector, io)?;
        self.on_progress(progress, io)
    }

    pub fn receive(
        &mut self,
        from: PartyIndex,
        message: RoundMessage<1>,
        io: &mut Io<'_, RoundMessage<1>>,
    ) -> Result<RankProgress, ProtocolError> {
        let progress = self.rounds.receive(from, message, io)?;
        self.on_progress(progress, io)
    }

    /// Names the ranks (1-based, each at most the count) once [`RankProgress::NeedRanks`] came.
    pub fn set_ranks(
        &mut self,
        ranks: Vec<u64>,
        io: &mut Io<'_, RoundMessage<1>>,
    ) -> Result<RankProgress, ProtocolError> {
        let first = self.first.take().expect("ranks are set once, after the first round");
        let bits = self.bits;
        self.searches = ranks
            .iter()
            .map(|&rank| {
                let mut search = Search::new();
                let holds: Vec<bool> = first.iter().map(|&c| c >= rank).collect();
                search.narrow(bits, &holds);
                search
            })
            .collect();
        self.ranks = ranks;
        self.next_round(io)
    }

    fn on_progress(
        &mut self,
        progress: Progress<Vec<Z64>>,
        io: &mut Io<'_, RoundMessage<1>>,
    ) -> Result<RankProgress, ProtocolError> {
        let Progress::Done(total) = progress else {
            return Ok(RankProgress::Continue);
        };
        let counts = total.into_iter().map(rounds::count).collect::<Result<Vec<u64>, _>>()?;
        if self.rounds.begun() == 1 {
            let (&samples, first) = counts.split_first().expect("the count leads the first round");
            self.first = Some(first.to_vec());
            return Ok(RankProgress::NeedRanks(samples));
        }
        let mut rest = counts.as_slice();
        for (search, &rank) in self.searches.iter_mut().zip(&self.ranks) {
            let n = search.thresholds(self.bits).len();
            let holds: Vec<bool> = rest[..n].iter().map(|&c| c >= rank).collect();
            search.narrow(self.bits, &holds);
            rest = &rest[n..];
        }
        self.next_round(io)
    }

    fn next_round(&mut self, io: &mut Io<'_, RoundMessage<1>>) -> Result<RankProgress, ProtocolError> {
        if let Some(found) = self.searches.iter().map(Search::found).collect::<Option<Vec<u64>>>() {
            return Ok(RankProgress::Done(found));
        }
        let thresholds: Vec<u64> = self.searches.iter().flat_map(|s| s.thresholds(self.bits)).collect();
        let vector = self.counts_at(&thresholds);
        let progress = self.rounds.begin(vector, io)?;
        self.on_progress(progress, io)
    }
}
