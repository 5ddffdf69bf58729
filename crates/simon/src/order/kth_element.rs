//! KthElement: the k-th smallest of all parties' values, exact for any finite doubles and for
//! integers up to ±2^53, in at most 64 / `bits_per_round` rounds ([`RankSearch`]).
//!
//! Input: the reference's `[{"array": [numbers], "rank": k, "lower_bound": L,
//! "upper_bound": U}]` (the last object counts; a bare object is accepted). `rank` is 1-based.
//! Every party must give the same rank and bounds: each party sends them to the others, and a
//! party that finds a difference fails the computation, naming it. The bounds are checked for
//! consistency only: the search covers every double, so they need not be tight (the reference
//! bisected between them over integers and never ended on fractions, W15).
//! Output: `{"samples": n, "item": x}`, `x` an int when it is integral (as the reference's).
//!
//! What each party learns: n, the k-th value, and the counts of values ≤ each threshold tested
//! (2^bits − 1 per round; see [`RankSearch`]). The reference also broadcast every party's count.

use crate::fixed_point::EncodingError;
use crate::order::doubles::{self, Ordered};
use crate::order::rank_search::{RankProgress, RankSearch};
use crate::protocol::{Io, Microprotocol, PartyIndex, Progress, ProtocolError};
use crate::sum::rounds::RoundMessage;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The default for rank searches: 15 thresholds a round, 16 rounds.
pub const DEFAULT_RANK_BITS: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankParameters {
    /// Thresholds per round are 2^bits − 1: more bits, fewer rounds, more counts revealed.
    #[serde(default = "default_rank_bits")]
    pub bits_per_round: u32,
}

fn default_rank_bits() -> u32 {
    DEFAULT_RANK_BITS
}

impl Default for RankParameters {
    fn default() -> Self {
        RankParameters {
            bits_per_round: DEFAULT_RANK_BITS,
        }
    }
}

impl RankParameters {
    pub fn validate(self) -> Result<Self, String> {
        crate::order::minimum_maximum::check_bits(self.bits_per_round)?;
        Ok(self)
    }
}

/// What every party must agree on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Terms {
    rank: u64,
    lower_bound: f64,
    upper_bound: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KthMessage {
    Terms(Terms),
    Round(RoundMessage<1>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KthElement {
    terms: Terms,
    terms_from: Vec<bool>,
    samples: Option<u64>,
    search: RankSearch,
}

impl KthElement {
    pub fn new(parameters: RankParameters, parties: usize, input: &Value) -> Result<KthElement, EncodingError> {
        let invalid = |reason: String| EncodingError::Invalid(reason);
        let fields = match input {
            Value::Array(items) => items.last(),
            single => Some(single),
        };
        let Some(Value::Object(fields)) = fields else {
            return Err(invalid(
                "KthElement takes [{\"array\": [...], \"rank\": k, \"lower_bound\": l, \"upper_bound\": u}]".into(),
            ));
        };
        let field = |name: &str| fields.get(name).ok_or_else(|| invalid(format!("{name:?} is missing")));
        let bound = |name: &str| match field(name)? {
            Value::Number(n) => doubles::number(n).map(|o| o.value),
            other => Err(invalid(format!(
                "{name:?} must be a number, found {}",
                doubles::kind(other)
            ))),
        };
        let rank = field("rank")?
            .as_u64()
            .filter(|&k| k >= 1)
            .ok_or_else(|| invalid(format!("\"rank\" must be a positive integer, found {}", fields["rank"])))?;
        let (lower_bound, upper_bound) = (bound("lower_bound")?, bound("upper_bound")?);
        if lower_bound > upper_bound {
            return Err(invalid(format!(
                "lower_bound {lower_bound} is above upper_bound {upper_bound}"
            )));
        }
        let values = doubles::numbers(field("array")?)?;
        Ok(KthElement {
            terms: Terms {
                rank,
                lower_bound,
                upper_bound,
            },
            terms_from: vec![false; parties],
            samples: None,
            search: RankSearch::new(parameters.bits_per_round, values.iter().map(|v| v.key()).collect()),
        })
    }

    /// Names the rank once the count is in and every party's terms are known to match.
    fn advance(
        &mut self,
        progress: RankProgress,
        io: &mut Io<'_, KthMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        match progress {
            RankProgress::Continue => Ok(Progress::Continue),
            RankProgress::NeedRanks(samples) => {
                self.samples = Some(samples);
                self.set_rank_when_agreed(io)
            }
            RankProgress::Done(keys) => {
                let item = doubles::from_key(keys[0]);
                let item = Ordered {
                    value: item,
                    int: item.fract() == 0.0 && item.abs() <= 9007199254740992.0,
                };
                Ok(Progress::Done(json!({"samples": self.samples, "item": item.to_json()})))
            }
        }
    }

    fn set_rank_when_agreed(&mut self, io: &mut Io<'_, KthMessage>) -> Result<Progress<Value>, ProtocolError> {
        let Some(samples) = self.samples else {
            return Ok(Progress::Continue);
        };
        if !self.terms_from.iter().all(|&seen| seen) {
            return Ok(Progress::Continue);
        }
        if self.terms.rank > samples {
            return Err(ProtocolError::Failed(format!(
                "rank {} is beyond the {samples} values of all parties",
                self.terms.rank
            )));
        }
        let rank = self.terms.rank;
        let progress = io.child(KthMessage::Round, |io| self.search.set_ranks(vec![rank], io))?;
        self.advance(progress, io)
    }
}

impl Microprotocol for KthElement {
    type Message = KthMessage;
    type Output = Value;

    fn start(&mut self, io: &mut Io<'_, KthMessage>) -> Result<Progress<Value>, ProtocolError> {
        io.broadcast(KthMessage::Terms(self.terms));
        self.terms_from[io.me()] = true;
        let progress = io.child(KthMessage::Round, |io| self.search.start(io))?;
        self.advance(progress, io)
    }

    fn receive(
        &mut self,
        from: PartyIndex,
        message: KthMessage,
        io: &mut Io<'_, KthMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        match message {
            KthMessage::Terms(terms) => {
                if std::mem::replace(&mut self.terms_from[from], true) {
                    return Err(ProtocolError::Unexpected {
                        from,
                        what: "a second rank".into(),
                    });
                }
                if terms != self.terms {
                    return Err(ProtocolError::Failed(format!(
                        "the parties disagree on rank and bounds: party {from} has rank {} in [{}, {}], \
                         party {} has rank {} in [{}, {}]",
                        terms.rank,
                        terms.lower_bound,
                        terms.upper_bound,
                        io.me(),
                        self.terms.rank,
                        self.terms.lower_bound,
                        self.terms.upper_bound
                    )));
                }
                self.set_rank_when_agreed(io)
            }
            KthMessage::Round(message) => {
                let progress = io.child(KthMessage::Round, |io| self.search.receive(from, message, io))?;
                self.advance(progress, io)
            }
        }
    }
}
