//! StatisticsUnivariate: the 22 summary statistics of the reference (REFERENCE.md §4.8) over all
//! parties' numbers, each within one unit in the last place of the exact value (or a stated
//! absolute bound where the value may cancel to zero), whatever the data, in a constant number of
//! rounds.
//!
//! Input: a number or a (nested) list of numbers (one party may have none). Rounds:
//! - MinimumMaximum's bisection (8 rounds, the count in the first): n, `minimum`, `maximum`;
//! - sum A, on grids derived from those: Σ(x − minimum), an OR "some value is 0" when the
//!   extremes straddle 0, and Σ ln x when every value is positive;
//! - sum B, about the centre c = minimum + A/n and in the unit 2^e ≥ maximum − minimum: the
//!   centred power sums Σ((x − c)/2^e)^k, k = 2..6 ([`crate::statistics::moments`]), and Σ 1/x
//!   when no value is 0.
//!
//! Each party rounds each contribution to a public grid ([`crate::statistics::reals::Grid`]),
//! and every statistic is then computed exactly from the opened totals and rounded once
//! ([`crate::statistics::exact`]). The grids ([`Frame`], `UnivariateGrids`) are as fine as the accuracy stated in
//! docs/protocols.md needs, and no finer; so an opened total shows a statistic's value to at
//! most a few bits more than the statistic itself, except where docs/protocols.md says
//! otherwise and why (the mean, to the precision that exact centring needs; the harmonic mean's
//! Σ 1/x, to the precision of its smallest possible value). The reference centred nothing
//! exactly and lost everything to cancellation (W16).
//!
//! A statistic is `null` where mathematics leaves it undefined (`geometric_mean` when a value is
//! ≤ 0, `harmonic_mean` when a value is 0 or the reciprocals sum to 0, the sample variance and
//! what derives from it for one value, standardised moments when all values are equal,
//! coefficients of variation when the mean is 0) or where its own value is beyond the double
//! range; never because an intermediate value is.
//!
//! What each party learns: the 22 statistics, and the opened totals: n, the sum (on its grid,
//! see above), the centred power sums, Σ ln x and Σ 1/x where their statistic is defined (on
//! their grids), and whether some value is 0 (which a `null` harmonic mean shows anyway). The
//! reference also broadcast each party's extremes and leaked high moments through its integer
//! masks (W1, W2).

use crate::fixed_point::EncodingError;
use crate::order::doubles;
use crate::order::minimum_maximum::{Extremes, MinimumMaximum};
use crate::protocol::{Io, Microprotocol, PartyIndex, Progress, ProtocolError};
use crate::statistics::dd::{self, Dd};
use crate::statistics::exact::{exact, mantissa_times_power_of_two, number, signed_sqrt_to_f64, sqrt_to_f64, to_f64};
use crate::statistics::moments::{BITS, Factors, Frame, LocalMoments, MAX_POWER, exponent};
use crate::statistics::reals::{Grid, floor_log2};
use crate::sum::rounds::{RoundMessage, Rounds};
use crate::z2k::ZWide;
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, Zero};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UnivariateMessage {
    Extremes(RoundMessage<1>),
    Sums(RoundMessage<36>),
}

/// Σ ln x over positive values to double-double precision, without a logarithm per value:
/// x = m·2^e with m in [1, 2), so Σ ln x = ln 2 · Σe + ln Πm, the product kept as a
/// double-double and brought back to [1, 2) every 512 factors.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LogSum {
    exponents: i64,
    product: Dd,
}

impl LogSum {
    fn of(values: &[f64]) -> LogSum {
        let mut sum = LogSum {
            exponents: 0,
            product: Dd::from_f64(1.0),
        };
        for chunk in values.chunks(512) {
            for &x in chunk {
                let (m, e) = mantissa_exponent(x);
                sum.exponents += e;
                sum.product = sum.product.mul_split(Dd::from_f64(m), dd::split_of(m));
            }
            let k = exponent(sum.product.hi);
            sum.product = sum.product.scaled(-i64::from(k));
            sum.exponents += i64::from(k);
        }
        sum
    }

    fn value(&self) -> BigRational {
        (dd::LN_2 * Dd::from_f64(self.exponents as f64) + self.product.ln()).to_rational()
    }
}

/// x = m · 2^e with m in [1, 2), for x > 0, from the bits (a subnormal is normalised first).
fn mantissa_exponent(x: f64) -> (f64, i64) {
    let bits = x.to_bits();
    let biased = (bits >> 52) as i64;
    if biased == 0 {
        let (m, e) = mantissa_exponent(x * 2f64.powi(64));
        return (m, e - 64);
    }
    (f64::from_bits((bits & ((1 << 52) - 1)) | (1023 << 52)), biased - 1023)
}

/// Σ 1/x over non-zero values to double-double precision: in units of 2^−shift, with 2^shift
/// the largest power of two at most the smallest |x|, every term is at most 1 in magnitude and
/// nothing overflows (1/5e-324 is 2^1074).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ReciprocalSum {
    shift: i64,
    sum: Dd,
}

impl ReciprocalSum {
    fn of(values: &[f64]) -> ReciprocalSum {
        let smallest = values.iter().fold(f64::INFINITY, |m, x| m.min(x.abs()));
        let shift = if values.is_empty() {
            0
        } else {
            i64::from(exponent(smallest))
        };
        let factors = Factors::new(-shift);
        let mut sum = Dd::ZERO;
        for &x in values {
            let scaled = factors.apply(x);
            // Beyond the range, 2^shift/x is below 2^−1024 of the sum's largest term.
            if scaled.is_finite() {
                let term = Dd::reciprocal(scaled);
                sum.accumulate(term.hi, term.lo);
            }
        }
        ReciprocalSum {
            shift,
            sum: sum + Dd::ZERO,
        }
    }

    fn value(&self) -> BigRational {
        self.sum.to_rational() * mantissa_times_power_of_two(BigInt::one(), -self.shift)
    }
}

/// The grids of the sums only this protocol takes, in the frame of the values.
trait UnivariateGrids {
    fn asks_zero(&self) -> bool;
    fn log_grid(&self) -> Option<Grid>;
    fn moment_grid(&self, k: usize) -> Grid;
    fn reciprocal_grid(&self) -> Grid;
}

impl UnivariateGrids for Frame {
    /// The OR "some value is 0" is needed only when the extremes straddle 0.
    fn asks_zero(&self) -> bool {
        self.minimum < 0.0 && self.maximum > 0.0
    }

    /// Σ ln x, when every value is positive: the geometric mean is e^(Σ ln x / n), so 2^−58 of n
    /// keeps it within 2^−58 relative.
    fn log_grid(&self) -> Option<Grid> {
        (self.minimum > 0.0).then(|| Grid::below(floor_log2(&self.n()), BITS, self.parties))
    }

    /// Σ((x − c)/2^e)^k: every even sum is at least 2·4^−k (two values are the extremes, at
    /// least half the spread from c); odd ones are standardised by n^(k/2 − 1)/M_2^(k/2), so
    /// their grid is finer by that factor's bound.
    fn moment_grid(&self, k: usize) -> Grid {
        let odd = if k % 2 == 1 {
            ((k as i64 - 2) * self.log_samples() + 1) / 2
        } else {
            0
        };
        Grid::below(-2 * k as i64, BITS - 2 + odd, self.parties)
    }

    /// Σ 1/x, when no value is 0: every |1/x| ≥ 1/s (s the largest magnitude), so n/s bounds
    /// the sum below when all values have one sign.
    fn reciprocal_grid(&self) -> Grid {
        let largest = exact(self.minimum.abs().max(self.maximum.abs()));
        Grid::below(floor_log2(&(self.n() / largest)), BITS, self.parties)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatisticsUnivariate {
    moments: LocalMoments,
    has_zero: bool,
    /// Σ ln x, if every value of this party is positive (else it is never asked for).
    logs: Option<LogSum>,
    /// Σ 1/x, if no value of this party is 0 (else it is never asked for).
    reciprocals: Option<ReciprocalSum>,
    extremes: MinimumMaximum,
    /// (n, minimum, maximum), once found.
    found: Option<(u64, f64, f64)>,
    /// The total of sum A, once opened.
    first: Option<Vec<ZWide>>,
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
        Ok(StatisticsUnivariate::of(&doubles::doubles(input)?))
    }

    /// From the input's numbers as [`doubles::doubles`] reads them (finite).
    pub fn of(values: &[f64]) -> StatisticsUnivariate {
        let has_zero = values.contains(&0.0);
        StatisticsUnivariate {
            moments: LocalMoments::of(values),
            has_zero,
            logs: values.iter().all(|&x| x > 0.0).then(|| LogSum::of(values)),
            reciprocals: (!has_zero).then(|| ReciprocalSum::of(values)),
            extremes: MinimumMaximum::of_values(crate::order::bisection::MAX_BITS_PER_ROUND, values),
            found: None,
            first: None,
            // The extremes are sequence 0.
            sums: Rounds::sequence(1),
        }
    }

    fn on_extremes(
        &mut self,
        progress: Progress<Extremes>,
        io: &mut Io<'_, UnivariateMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        let Progress::Done(extremes) = progress else {
            return Ok(Progress::Continue);
        };
        self.found = Some((extremes.samples, extremes.minimum.value, extremes.maximum.value));
        let plan = self.plan(io.parties());
        let offset = plan.offset(self.moments.sum, self.moments.count);
        let progress = io.child(UnivariateMessage::Sums, |io| {
            // Every slot travels, asked for or not (then as zero), so that the message's length
            // shows the broker nothing of the data.
            let mut vector = vec![plan.offset_grid().encode(&offset)];
            vector.push(if plan.asks_zero() {
                or_bit(self.has_zero, io)
            } else {
                ZWide::ZERO
            });
            vector.push(match plan.log_grid() {
                Some(grid) => grid.encode(&self.logs.as_ref().expect("every value is positive").value()),
                None => ZWide::ZERO,
            });
            self.sums.begin(vector, io)
        })?;
        self.on_sums(progress, io)
    }

    fn plan(&self, parties: usize) -> Frame {
        let (samples, minimum, maximum) = self.found.expect("the sums follow the extremes");
        Frame::new(samples, minimum, maximum, parties)
    }

    fn on_sums(
        &mut self,
        progress: Progress<Vec<ZWide>>,
        io: &mut Io<'_, UnivariateMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        let Progress::Done(total) = progress else {
            return Ok(Progress::Continue);
        };
        let plan = self.plan(io.parties());
        let Some(first) = &self.first else {
            let opened = Opened::first(&plan, &total);
            let centre = plan.centre(&opened.sum);
            let mut vector: Vec<ZWide> = self
                .moments
                .centred(&centre, plan.unit)
                .iter()
                .zip(2..)
                .map(|(c, k)| plan.moment_grid(k).encode(&c.to_rational()))
                .collect();
            vector.push(if opened.has_zero {
                ZWide::ZERO
            } else {
                let reciprocals = self.reciprocals.as_ref().expect("no value is 0");
                plan.reciprocal_grid().encode(&reciprocals.value())
            });
            self.first = Some(total);
            let progress = io.child(UnivariateMessage::Sums, |io| self.sums.begin(vector, io))?;
            return self.on_sums(progress, io);
        };
        Ok(Progress::Done(Opened::first(&plan, first).statistics(&plan, &total)))
    }
}

/// The opened totals, exactly.
struct Opened {
    /// Σx.
    sum: BigRational,
    has_zero: bool,
    /// Σ ln x, when asked for.
    logs: Option<BigRational>,
}

impl Opened {
    fn first(plan: &Frame, total: &[ZWide]) -> Opened {
        let mut total = total.iter();
        let sum = plan.sum(*total.next().expect("the offset is summed"));
        let or = *total.next().expect("the OR's slot is summed");
        let has_zero = if plan.asks_zero() {
            or != ZWide::ZERO
        } else {
            plan.minimum == 0.0 || plan.maximum == 0.0
        };
        let logs_slot = *total.next().expect("Σ ln x's slot is summed");
        let logs = plan.log_grid().map(|grid| grid.decode(logs_slot));
        Opened { sum, has_zero, logs }
    }

    fn statistics(&self, plan: &Frame, second: &[ZWide]) -> Value {
        let samples = plan.samples;
        let n = plan.n();
        let mean = &self.sum / &n;
        let c = plan.centre(&self.sum).value(plan.unit);
        // M_k = Σ(x − c)^k, exactly as opened.
        let moment = |k: usize| plan.in_units(plan.moment_grid(k).decode(second[k - 2]), k as i64);
        let m2 = moment(2);
        let one = BigRational::one();
        let below = samples > 1;
        let n1 = &n - &one;
        let variance = below.then(|| &m2 / &n1);
        let spread = !m2.is_zero();
        // n^(k/2 − 1) M_k / M_2^(k/2): the k-th standardised moment, for even k.
        let standardised_even = |k: usize| {
            spread.then(|| moment(k) * num_traits::pow(n.clone(), k / 2 - 1) / num_traits::pow(m2.clone(), k / 2))
        };
        let kurtosis = standardised_even(4);
        // sign(M_k) √(n^(k−2) M_k² / M_2^k), for odd k.
        let odd = |k: usize| {
            spread.then(|| {
                let mk = moment(k);
                let square = &mk * &mk * num_traits::pow(n.clone(), k - 2) / num_traits::pow(m2.clone(), k);
                signed_sqrt_to_f64(&mk, &square)
            })
        };
        let harmonic = (!self.has_zero)
            .then(|| plan.reciprocal_grid().decode(second[MAX_POWER - 1]))
            .filter(|h| !h.is_zero())
            .map(|h| to_f64(&(&n / h)));
        let geometric = self.logs.as_ref().map(|l| {
            let log_mean = Dd::of_rational(&(l / &n));
            to_f64(&log_mean.exp().to_rational())
        });
        let squares = &m2 + (&c * (&self.sum - &n * &c)) * BigRational::from_integer(2.into()) + &n * &c * &c;
        let per_mean = |square_of_deviation: &BigRational| {
            (!self.sum.is_zero()).then(|| {
                let ratio = square_of_deviation * &n * &n / (&self.sum * &self.sum);
                signed_sqrt_to_f64(&self.sum, &ratio)
            })
        };
        let mut out = Map::new();
        let mut put = |key: &str, value: Option<f64>| {
            out.insert(key.to_string(), number(value));
        };
        put("minimum", Some(plan.minimum));
        put("maximum", Some(plan.maximum));
        put("sum", Some(to_f64(&self.sum)));
        put("mean", Some(to_f64(&mean)));
        put("harmonic_mean", harmonic);
        put("geometric_mean", geometric);
        put("variance", variance.as_ref().map(to_f64));
        put("variance_mle", Some(to_f64(&(&m2 / &n))));
        put("variance_of_sample_mean", variance.as_ref().map(|v| to_f64(&(v / &n))));
        put("standard_deviation", variance.as_ref().map(sqrt_to_f64));
        put("standard_deviation_mle", Some(sqrt_to_f64(&(&m2 / &n))));
        put(
            "standard_error_of_sample_mean",
            variance.as_ref().map(|v| sqrt_to_f64(&(v / &n))),
        );
        put("coefficient_of_variation", variance.as_ref().and_then(per_mean));
        put("coefficient_of_variation_mle", per_mean(&(&m2 / &n)));
        put("root_mean_square", Some(sqrt_to_f64(&(squares / &n))));
        put("root_mean_square_deviation", Some(sqrt_to_f64(&(&m2 / &n))));
        put("skewness", odd(3));
        put("kurtosis", kurtosis.as_ref().map(to_f64));
        put(
            "kurtosis_excess",
            kurtosis
                .as_ref()
                .map(|k| to_f64(&(k - BigRational::from_integer(3.into())))),
        );
        put("hyper_skewness", odd(5));
        put("hyper_flatness", standardised_even(6).as_ref().map(to_f64));
        out.insert("samples".to_string(), json!(samples));
        Value::Object(out)
    }
}

impl Microprotocol for StatisticsUnivariate {
    type Message = UnivariateMessage;
    type Output = Value;

    fn start(&mut self, io: &mut Io<'_, UnivariateMessage>) -> Result<Progress<Value>, ProtocolError> {
        let progress = io.child(UnivariateMessage::Extremes, |io| self.extremes.start(io))?;
        self.on_extremes(progress, io)
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
