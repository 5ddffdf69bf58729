//! MinimumMaximum: the global minimum and maximum and the number of values, without revealing
//! any party's own extremes (the reference broadcasts them, W2).
//!
//! Input: `{"minimum": a, "maximum": b}`, a list of such objects (one sample each, folded), or
//! numbers (one sample each). Output: `{"samples": n, "minimum": a, "maximum": b}`; the extremes
//! keep their JSON type (an int wins a tie with an equal float).
//!
//! Both extremes are found by bisection over the order-preserving keys of doubles
//! ([`crate::order::doubles`], [`crate::order::bisection`]), in the same rounds: each round
//! asks, for 255 thresholds t, "does any party hold a minimum ≤ t?" and "does any party hold a
//! maximum > t?".
//! Each answer is an OR computed as the secure sum of b_i · r_i with r_i uniform and non-zero:
//! zero exactly when no party's bit is set, otherwise uniform, so it reveals the OR and nothing
//! more; and every OR is determined by the result. The first round also sums the counts. A last
//! round of two ORs asks whether some party's extreme is an int.
//!
//! What each party learns: the number of values, the minimum and the maximum (and their types).
//! Rounds: 64 / `bits_per_round` (default 8: 8 rounds) plus one; each one sum round.

use crate::fixed_point::EncodingError;
use crate::order::bisection::{MAX_BITS_PER_ROUND, Search};
use crate::order::doubles::{self, Ordered};
use crate::protocol::{Io, Microprotocol, PartyIndex, Progress, ProtocolError};
use crate::sum::rounds::{self, RoundMessage, Rounds};
use crate::z2k::Z64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinimumMaximumParameters {
    /// Thresholds per round are 2^bits − 1; fewer bits, smaller messages, more rounds.
    #[serde(default = "default_bits")]
    pub bits_per_round: u32,
}

fn default_bits() -> u32 {
    MAX_BITS_PER_ROUND
}

impl Default for MinimumMaximumParameters {
    fn default() -> Self {
        MinimumMaximumParameters {
            bits_per_round: default_bits(),
        }
    }
}

/// Checks `bits_per_round` for any protocol that bisects.
pub fn check_bits(bits: u32) -> Result<(), String> {
    if (1..=MAX_BITS_PER_ROUND).contains(&bits) {
        Ok(())
    } else {
        Err(format!(
            "bits_per_round must be between 1 and {MAX_BITS_PER_ROUND}, got {bits}"
        ))
    }
}

impl MinimumMaximumParameters {
    pub fn validate(self) -> Result<Self, String> {
        check_bits(self.bits_per_round)?;
        Ok(self)
    }
}

/// The global extremes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Extremes {
    pub samples: u64,
    pub minimum: Ordered,
    pub maximum: Ordered,
}

impl Extremes {
    pub fn to_json(self) -> Value {
        json!({"samples": self.samples, "minimum": self.minimum.to_json(), "maximum": self.maximum.to_json()})
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MinimumMaximum {
    bits: u32,
    /// Whether to ask, at the end, whether the extremes are ints (statistics need only doubles).
    typed: bool,
    samples: u64,
    /// This party's own (minimum, maximum), if it has values; never sent.
    local: Option<(LocalExtreme, LocalExtreme)>,
    minimum: Search,
    maximum: Search,
    total_samples: Option<u64>,
    rounds: Rounds<1>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct LocalExtreme {
    key: u64,
    int: bool,
}

impl From<Ordered> for LocalExtreme {
    fn from(value: Ordered) -> Self {
        LocalExtreme {
            key: value.key(),
            int: value.int,
        }
    }
}

/// An OR bit as a ring element: zero, or uniform among the non-zero elements.
fn or_bit(bit: bool, io: &mut Io<'_, RoundMessage<1>>) -> Z64 {
    if bit { Z64::random_nonzero(io.rng()) } else { Z64::ZERO }
}

impl MinimumMaximum {
    /// Reads the reference's input: extremes objects or numbers.
    pub fn new(parameters: MinimumMaximumParameters, input: &Value) -> Result<MinimumMaximum, EncodingError> {
        let mut samples = 0;
        let mut local: Option<(Ordered, Ordered)> = None;
        let mut fold = |low: Ordered, high: Ordered| {
            samples += 1;
            local = Some(match local {
                None => (low, high),
                Some((min, max)) => (
                    if low.value < min.value || (low.value == min.value && low.int) {
                        low
                    } else {
                        min
                    },
                    if high.value > max.value || (high.value == max.value && high.int) {
                        high
                    } else {
                        max
                    },
                ),
            });
        };
        let items = match input {
            Value::Array(items) => items.as_slice(),
            single => std::slice::from_ref(single),
        };
        for item in items {
            match item {
                Value::Object(fields) => {
                    let read = |name: &str| match fields.get(name) {
                        Some(Value::Number(n)) => doubles::number(n),
                        Some(other) => Err(EncodingError::Invalid(format!(
                            "{name:?} must be a number, found {}",
                            doubles::kind(other)
                        ))),
                        None => Err(EncodingError::Invalid(format!("an extremes object needs {name:?}"))),
                    };
                    let (low, high) = (read("minimum")?, read("maximum")?);
                    if low.value > high.value {
                        return Err(EncodingError::Invalid(format!(
                            "minimum {} is above maximum {}",
                            low.value, high.value
                        )));
                    }
                    fold(low, high);
                }
                other => doubles::numbers(other)?.into_iter().for_each(|x| fold(x, x)),
            }
        }
        Ok(Self::from_local(parameters.bits_per_round, true, samples, local))
    }

    /// The building block for other protocols: extremes of these values, as doubles.
    pub fn of_values(bits: u32, values: &[f64]) -> MinimumMaximum {
        let as_ordered = |value| Ordered { value, int: false };
        let local = values.iter().fold(None::<(f64, f64)>, |acc, &x| match acc {
            None => Some((x, x)),
            Some((min, max)) => Some((min.min(x), max.max(x))),
        });
        let local = local.map(|(min, max)| (as_ordered(min), as_ordered(max)));
        Self::from_local(bits, false, values.len() as u64, local)
    }

    /// The same search as mask sequence `sequence` of its computation, for a protocol that
    /// runs several (the extremes of two variables) in the same rounds.
    pub fn in_sequence(mut self, sequence: u32) -> MinimumMaximum {
        self.rounds = Rounds::sequence(sequence);
        self
    }

    fn from_local(bits: u32, typed: bool, samples: u64, local: Option<(Ordered, Ordered)>) -> MinimumMaximum {
        MinimumMaximum {
            bits,
            typed,
            samples,
            local: local.map(|(min, max)| (min.into(), max.into())),
            minimum: Search::new(),
            maximum: Search::new(),
            total_samples: None,
            rounds: Rounds::new(),
        }
    }

    /// The OR bits of the next bisection round: "my minimum ≤ t", then "my maximum > t".
    fn bisection_vector(&self, io: &mut Io<'_, RoundMessage<1>>) -> Vec<Z64> {
        let mut vector = Vec::new();
        for t in self.minimum.thresholds(self.bits) {
            let bit = self.local.is_some_and(|(min, _)| min.key <= t);
            vector.push(or_bit(bit, io));
        }
        for t in self.maximum.thresholds(self.bits) {
            let bit = self.local.is_some_and(|(_, max)| max.key > t);
            vector.push(or_bit(bit, io));
        }
        vector
    }

    fn on_total(
        &mut self,
        total: Vec<Z64>,
        io: &mut Io<'_, RoundMessage<1>>,
    ) -> Result<Progress<Extremes>, ProtocolError> {
        let (Some(min_key), Some(max_key)) = (self.minimum.found(), self.maximum.found()) else {
            let mut bits = total.iter().map(|&x| x != Z64::ZERO);
            if self.total_samples.is_none() {
                let count = rounds::count(total[0])?;
                if count == 0 {
                    return Err(ProtocolError::Failed("no party has any value".into()));
                }
                self.total_samples = Some(count);
                bits.next();
            }
            let bits: Vec<bool> = bits.collect();
            let below = self.minimum.thresholds(self.bits).len();
            // "some minimum ≤ t" turns true at the minimum; "no maximum > t" at the maximum.
            self.minimum.narrow(self.bits, &bits[..below]);
            let no_maximum_above: Vec<bool> = bits[below..].iter().map(|b| !b).collect();
            self.maximum.narrow(self.bits, &no_maximum_above);
            return self.next_round(io);
        };
        let samples = self.total_samples.expect("counted in the first round");
        let extreme = |key: u64, int: bool| Ordered {
            value: doubles::from_key(key),
            int,
        };
        Ok(Progress::Done(Extremes {
            samples,
            minimum: extreme(min_key, total[0] != Z64::ZERO),
            maximum: extreme(max_key, total[1] != Z64::ZERO),
        }))
    }

    fn next_round(&mut self, io: &mut Io<'_, RoundMessage<1>>) -> Result<Progress<Extremes>, ProtocolError> {
        let vector = match (self.minimum.found(), self.maximum.found()) {
            (Some(min), Some(max)) if self.typed => {
                let is = |local: Option<LocalExtreme>, key| local.is_some_and(|l| l.int && l.key == key);
                let min_int = is(self.local.map(|l| l.0), min);
                let max_int = is(self.local.map(|l| l.1), max);
                vec![or_bit(min_int, io), or_bit(max_int, io)]
            }
            (Some(min), Some(max)) => {
                let as_double = |key| Ordered {
                    value: doubles::from_key(key),
                    int: false,
                };
                return Ok(Progress::Done(Extremes {
                    samples: self.total_samples.expect("counted in the first round"),
                    minimum: as_double(min),
                    maximum: as_double(max),
                }));
            }
            _ => self.bisection_vector(io),
        };
        match self.rounds.begin(vector, io)? {
            Progress::Done(total) => self.on_total(total, io),
            Progress::Continue => Ok(Progress::Continue),
        }
    }
}

impl Microprotocol for MinimumMaximum {
    type Message = RoundMessage<1>;
    type Output = Extremes;

    fn start(&mut self, io: &mut Io<'_, RoundMessage<1>>) -> Result<Progress<Extremes>, ProtocolError> {
        let mut vector = vec![Z64::from_u64(self.samples)];
        vector.extend(self.bisection_vector(io));
        match self.rounds.begin(vector, io)? {
            Progress::Done(total) => self.on_total(total, io),
            Progress::Continue => Ok(Progress::Continue),
        }
    }

    fn receive(
        &mut self,
        from: PartyIndex,
        message: RoundMessage<1>,
        io: &mut Io<'_, RoundMessage<1>>,
    ) -> Result<Progress<Extremes>, ProtocolError> {
        match self.rounds.receive(from, message, io)? {
            Progress::Done(total) => self.on_total(total, io),
            Progress::Continue => Ok(Progress::Continue),
        }
    }
}
