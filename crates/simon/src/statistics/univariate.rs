//! StatisticsUnivariate: the 22 summary statistics of the reference (REFERENCE.md §4.8) over all
//! parties' numbers, numerically stable and in a constant number of rounds whatever the data.
//!
//! Input: a number or a (nested) list of numbers (one party may have none). Rounds, run as:
//! - MinimumMaximum's bisection (8 rounds) for `minimum`, `maximum`, and, at the same time,
//! - one sum in the wide ring of (count, exact Σx, an OR "some value is 0"); then
//! - one sum of the centred power sums Σ((x − mean)/s)^k, k = 2..6
//!   ([`crate::statistics::moments`], s the largest magnitude), of Σ ln x when every value is
//!   positive, and of Σ 1/x when none is 0.
//!
//! Every sum is exact ([`crate::statistics::reals`]) and rounded once. `samples` is an int. A
//! statistic that mathematics leaves undefined is `null`: `geometric_mean` when a value is ≤ 0,
//! `harmonic_mean` when a value is 0, the sample variance and what derives from it for one
//! value, standardised moments when all values are equal, coefficients of variation when the
//! mean is 0 (the reference raised and hung, or returned 1.0 for a geometric mean over negative
//! data; its maximum of all-negative data was 2.2e-308, W16).
//!
//! What each party learns: the 22 statistics (which determine count, sum, the centred power sums
//! and, where defined, Σ ln x and Σ 1/x), and whether some value is 0. The reference also
//! broadcast each party's extremes and leaked high moments through its integer masks (W1, W2).

use crate::fixed_point::EncodingError;
use crate::order::doubles;
use crate::order::minimum_maximum::{Extremes, MinimumMaximum};
use crate::protocol::{Io, Microprotocol, PartyIndex, Progress, ProtocolError};
use crate::statistics::moments::{LocalMoments, MAX_POWER};
use crate::statistics::reals::{self, ExactSum};
use crate::sum::rounds::{self, RoundMessage, Rounds};
use crate::z2k::ZWide;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UnivariateMessage {
    Extremes(RoundMessage<1>),
    Sums(RoundMessage<36>),
}

/// Count, exact sum and zero flag of all parties, once summed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Totals {
    samples: u64,
    sum: ZWide,
    has_zero: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatisticsUnivariate {
    moments: LocalMoments,
    has_zero: bool,
    /// Σ ln x over this party's values, if all are positive (else the sum is not asked for).
    logs: ExactSum,
    reciprocals: ExactSum,
    extremes: MinimumMaximum,
    found: Option<(f64, f64)>,
    totals: Option<Totals>,
    sums: Rounds<36>,
}

fn or_bit(bit: bool, io: &mut Io<'_, RoundMessage<36>>) -> ZWide {
    if bit {
        ZWide::random_nonzero(io.rng())
    } else {
        ZWide::ZERO
    }
}

impl StatisticsUnivariate {
    pub fn new(input: &Value) -> Result<StatisticsUnivariate, EncodingError> {
        let values = doubles::doubles(input)?;
        // A reciprocal beyond the double range (|x| < 2^−1024) counts as the largest double.
        let reciprocal = |x: f64| (1.0 / x).clamp(-f64::MAX, f64::MAX);
        Ok(StatisticsUnivariate {
            moments: LocalMoments::of(&values),
            has_zero: values.contains(&0.0),
            logs: ExactSum::of(values.iter().filter(|&&x| x > 0.0).map(|x| x.ln())),
            reciprocals: ExactSum::of(values.iter().filter(|&&x| x != 0.0).map(|&x| reciprocal(x))),
            extremes: MinimumMaximum::of_values(crate::order::bisection::MAX_BITS_PER_ROUND, &values),
            found: None,
            totals: None,
            // The extremes are sequence 0.
            sums: Rounds::sequence(1),
        })
    }

    fn on_extremes(
        &mut self,
        progress: Progress<Extremes>,
        io: &mut Io<'_, UnivariateMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        if let Progress::Done(extremes) = progress {
            self.found = Some((extremes.minimum.value, extremes.maximum.value));
            return self.second_round(io);
        }
        Ok(Progress::Continue)
    }

    fn on_sums(
        &mut self,
        progress: Progress<Vec<ZWide>>,
        io: &mut Io<'_, UnivariateMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        let Progress::Done(total) = progress else {
            return Ok(Progress::Continue);
        };
        match self.totals {
            None => {
                let [samples, sum, zero] = total[..] else {
                    unreachable!("the first sum has three elements")
                };
                self.totals = Some(Totals {
                    samples: rounds::count(samples)?,
                    sum,
                    has_zero: zero != ZWide::ZERO,
                });
                self.second_round(io)
            }
            Some(totals) => {
                let (minimum, maximum) = self.found.expect("the second round follows the extremes");
                Ok(Progress::Done(statistics(totals, minimum, maximum, &total)))
            }
        }
    }

    /// The centred sums, once the mean (first sum) and the scale (extremes) are known.
    fn second_round(&mut self, io: &mut Io<'_, UnivariateMessage>) -> Result<Progress<Value>, ProtocolError> {
        let (Some(totals), Some((minimum, maximum))) = (self.totals, self.found) else {
            return Ok(Progress::Continue);
        };
        let mean = reals::decode(totals.sum, totals.samples);
        let mut vector: Vec<ZWide> = self
            .moments
            .centred(mean, scale(minimum, maximum))
            .iter()
            .map(|&c| reals::encode(c))
            .collect();
        if minimum > 0.0 {
            vector.push(self.logs.encoded());
        }
        if !totals.has_zero {
            vector.push(self.reciprocals.encoded());
        }
        let progress = io.child(UnivariateMessage::Sums, |io| self.sums.begin(vector, io))?;
        self.on_sums(progress, io)
    }
}

/// The public scale of the centred sums: the largest magnitude (1 if every value is 0).
fn scale(minimum: f64, maximum: f64) -> f64 {
    let s = minimum.abs().max(maximum.abs());
    if s == 0.0 { 1.0 } else { s }
}

/// A statistic, or null where it is undefined or beyond the double range.
fn number(x: Option<f64>) -> Value {
    match x {
        Some(x) if x.is_finite() => json!(x),
        _ => Value::Null,
    }
}

fn statistics(totals: Totals, minimum: f64, maximum: f64, sums: &[ZWide]) -> Value {
    let n = totals.samples as f64;
    let s = scale(minimum, maximum);
    let mean = reals::decode(totals.sum, totals.samples);
    // Normalised centred sums Σ((x − mean)/s)^k, k = 2..=6, divided by n.
    let moment = |k: usize| reals::decode(sums[k - 2], totals.samples);
    let m2 = moment(2);
    let var_mle = m2 * s * s;
    let variance = (totals.samples > 1).then(|| reals::decode(sums[0], totals.samples - 1) * s * s);
    let standardised = |k: usize| (m2 > 0.0).then(|| moment(k) / m2.powf(k as f64 / 2.0));
    let mut extra = sums[MAX_POWER - 1..].iter();
    let geometric = (minimum > 0.0).then(|| reals::decode(*extra.next().expect("asked for"), totals.samples).exp());
    let harmonic = (!totals.has_zero)
        .then(|| reals::decode(*extra.next().expect("asked for"), 1))
        .filter(|&h| h != 0.0)
        .map(|h| n / h);
    let sd = variance.map(f64::sqrt);
    let sd_mle = var_mle.sqrt();
    let per_mean = |x: Option<f64>| x.filter(|_| mean != 0.0).map(|x| x / mean);
    let kurtosis = standardised(4);
    let mut out = Map::new();
    let mut put = |key: &str, value: Value| {
        out.insert(key.to_string(), value);
    };
    put("samples", json!(totals.samples));
    put("minimum", json!(minimum));
    put("maximum", json!(maximum));
    put("sum", number(Some(reals::decode(totals.sum, 1))));
    put("mean", number(Some(mean)));
    put("harmonic_mean", number(harmonic));
    put("geometric_mean", number(geometric));
    put("variance", number(variance));
    put("variance_mle", number(Some(var_mle)));
    put("variance_of_sample_mean", number(variance.map(|v| v / n)));
    put("standard_deviation", number(sd));
    put("standard_deviation_mle", number(Some(sd_mle)));
    put(
        "standard_error_of_sample_mean",
        number(variance.map(|v| (v / n).sqrt())),
    );
    put("coefficient_of_variation", number(per_mean(sd)));
    put("coefficient_of_variation_mle", number(per_mean(Some(sd_mle))));
    put("root_mean_square", number(Some(s * (m2 + (mean / s).powi(2)).sqrt())));
    put("root_mean_square_deviation", number(Some(sd_mle)));
    put("skewness", number(standardised(3)));
    put("kurtosis", number(kurtosis));
    put("kurtosis_excess", number(kurtosis.map(|k| k - 3.0)));
    put("hyper_skewness", number(standardised(5)));
    put("hyper_flatness", number(standardised(6)));
    Value::Object(out)
}

impl Microprotocol for StatisticsUnivariate {
    type Message = UnivariateMessage;
    type Output = Value;

    fn start(&mut self, io: &mut Io<'_, UnivariateMessage>) -> Result<Progress<Value>, ProtocolError> {
        let progress = io.child(UnivariateMessage::Extremes, |io| self.extremes.start(io))?;
        if let Progress::Done(_) = self.on_extremes(progress, io)? {
            unreachable!("the extremes take several rounds");
        }
        let (count, sum, zero) = (self.moments.count, self.moments.sum, self.has_zero);
        let progress = io.child(UnivariateMessage::Sums, |io| {
            let vector = vec![ZWide::from_u64(count), sum.encoded(), or_bit(zero, io)];
            self.sums.begin(vector, io)
        })?;
        self.on_sums(progress, io)
    }

    fn receive(
        &mut self,
        from: PartyIndex,
        message: UnivariateMessage,
        io: &mut Io<'_, UnivariateMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        match message {
            UnivariateMessage::Extremes(message) => {
                let progress = io.child(UnivariateMessage::Extremes, |io| {
                    self.extremes.receive(from, message, io)
                })?;
                self.on_extremes(progress, io)
            }
            UnivariateMessage::Sums(message) => {
                let progress = io.child(UnivariateMessage::Sums, |io| self.sums.receive(from, message, io))?;
                self.on_sums(progress, io)
            }
        }
    }
}
