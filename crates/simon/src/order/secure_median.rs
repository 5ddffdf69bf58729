//! SecureMedian: the exact median of all parties' values (finite doubles, integers up to ±2^53),
//! always terminating: both middle ranks of an even count are searched in the same rounds by
//! [`RankSearch`], at most 64 / `bits_per_round` rounds (default 4 bits: 16 rounds).
//!
//! Input: a number or a (nested) list of numbers. Output: `{"median": float}`: the middle value,
//! or `(a + b) / 2` of the two middle values in doubles, as the reference computes it.
//!
//! What each party learns: the median, the total count, and the counts of values ≤ each
//! threshold tested (see [`RankSearch`]). The reference also broadcast every party's count and
//! extremes (W2), scaled floats by decimal digits and never ended on `[[0.57, 0.9], [0.1]]` (W15).

use crate::fixed_point::EncodingError;
use crate::order::doubles;
use crate::order::kth_element::RankParameters;
use crate::order::rank_search::{RankProgress, RankSearch};
use crate::protocol::{Io, Microprotocol, PartyIndex, Progress, ProtocolError};
use crate::sum::rounds::RoundMessage;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecureMedian {
    search: RankSearch,
}

impl SecureMedian {
    pub fn new(parameters: RankParameters, input: &Value) -> Result<SecureMedian, EncodingError> {
        let keys = doubles::numbers(input)?.iter().map(|v| v.key()).collect();
        Ok(SecureMedian {
            search: RankSearch::new(parameters.bits_per_round, keys),
        })
    }

    fn advance(
        &mut self,
        progress: RankProgress,
        io: &mut Io<'_, RoundMessage<1>>,
    ) -> Result<Progress<Value>, ProtocolError> {
        match progress {
            RankProgress::Continue => Ok(Progress::Continue),
            RankProgress::NeedRanks(0) => Err(ProtocolError::Failed("no party has any value".into())),
            RankProgress::NeedRanks(n) => {
                let ranks = if n % 2 == 1 {
                    vec![n / 2 + 1]
                } else {
                    vec![n / 2, n / 2 + 1]
                };
                let progress = self.search.set_ranks(ranks, io)?;
                self.advance(progress, io)
            }
            RankProgress::Done(keys) => Ok(Progress::Done(json!({"median": median(&keys)}))),
        }
    }
}

/// The middle value, or the mean of the two middle values as the reference computes it
/// (`(a + b) / 2`), halving first where the sum would overflow.
fn median(keys: &[u64]) -> f64 {
    match keys {
        [middle] => doubles::from_key(*middle),
        [low, high] => {
            let (a, b) = (doubles::from_key(*low), doubles::from_key(*high));
            let sum = a + b;
            if sum.is_finite() { sum / 2.0 } else { a / 2.0 + b / 2.0 }
        }
        _ => unreachable!("one or two middle ranks"),
    }
}

impl Microprotocol for SecureMedian {
    type Message = RoundMessage<1>;
    type Output = Value;

    fn start(&mut self, io: &mut Io<'_, RoundMessage<1>>) -> Result<Progress<Value>, ProtocolError> {
        let progress = self.search.start(io)?;
        self.advance(progress, io)
    }

    fn receive(
        &mut self,
        from: PartyIndex,
        message: RoundMessage<1>,
        io: &mut Io<'_, RoundMessage<1>>,
    ) -> Result<Progress<Value>, ProtocolError> {
        let progress = self.search.receive(from, message, io)?;
        self.advance(progress, io)
    }
}
