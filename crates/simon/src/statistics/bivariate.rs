//! StatisticsBivariate: covariance, correlation and the regression line of paired values, from
//! centred cross sums, in two sum rounds whatever the data.
//!
//! Input: a list of pairs `[x, y]` with |x|, |y| ≤ 1e100 (so that every centred square is a
//! finite double). Round 1 sums, exactly in the wide ring ([`crate::statistics::reals`]), the
//! count, Σx and Σy; round 2 the centred sums Σ(x − x̄)², Σ(y − ȳ)², Σ(x − x̄)(y − ȳ), each
//! party's share computed from its own two-pass summary shifted to the global means (as
//! [`crate::statistics::moments`]).
//!
//! Output (the reference's 7 keys, §4.9): `samples` (an int), `covariance_mle`, `covariance`,
//! `correlation_coefficient`, `regression_slope`, `regression_interceipt` (sic) and its corrected
//! spelling `regression_intercept`, `regression_slope_only` (through the origin); `null` where
//! undefined (one pair; no spread in x or y).
//!
//! What each party learns: the output, which determines the count, both means and the three
//! centred sums. The reference ran 30 sub-protocols and broadcast each party's extremes (W2).

use crate::fixed_point::EncodingError;
use crate::order::doubles;
use crate::protocol::{Io, Microprotocol, PartyIndex, Progress, ProtocolError};
use crate::statistics::reals::{self, ExactSum};
use crate::sum::rounds::{self, RoundMessage, Rounds};
use crate::z2k::ZWide;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The largest magnitude accepted: squares of differences stay far below the double range.
pub const MAX_MAGNITUDE: f64 = 1e100;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatisticsBivariate {
    count: u64,
    sum_x: ExactSum,
    sum_y: ExactSum,
    /// Local means and centred sums (xx, yy, xy, x, y), never sent.
    mean: (f64, f64),
    centred: [f64; 5],
    /// Count and global means once the first round is in.
    means: Option<(u64, f64, f64)>,
    rounds: Rounds<36>,
}

fn pair(item: &Value) -> Result<(f64, f64), EncodingError> {
    let number = |v: &Value| match v {
        Value::Number(n) => {
            let x = doubles::double(n)?;
            if x.abs() <= MAX_MAGNITUDE {
                Ok(x)
            } else {
                Err(EncodingError::Invalid(format!(
                    "StatisticsBivariate takes values up to ±1e100, got {n}"
                )))
            }
        }
        other => Err(EncodingError::NotANumber(doubles::kind(other))),
    };
    match item {
        Value::Array(xy) if xy.len() == 2 => Ok((number(&xy[0])?, number(&xy[1])?)),
        other => Err(EncodingError::Invalid(format!(
            "StatisticsBivariate takes a list of pairs [x, y], found {other}"
        ))),
    }
}

impl StatisticsBivariate {
    pub fn new(input: &Value) -> Result<StatisticsBivariate, EncodingError> {
        let Value::Array(items) = input else {
            return Err(EncodingError::Invalid(
                "StatisticsBivariate takes a list of pairs [x, y]".into(),
            ));
        };
        let pairs = items.iter().map(pair).collect::<Result<Vec<_>, _>>()?;
        let count = pairs.len() as u64;
        let sum_x = ExactSum::of(pairs.iter().map(|p| p.0));
        let sum_y = ExactSum::of(pairs.iter().map(|p| p.1));
        let mean = if count == 0 {
            (0.0, 0.0)
        } else {
            (
                reals::decode(sum_x.encoded(), count),
                reals::decode(sum_y.encoded(), count),
            )
        };
        let mut centred = [0.0; 5];
        for (x, y) in pairs {
            let (u, v) = (x - mean.0, y - mean.1);
            centred[0] += u * u;
            centred[1] += v * v;
            centred[2] += u * v;
            centred[3] += u;
            centred[4] += v;
        }
        Ok(StatisticsBivariate {
            count,
            sum_x,
            sum_y,
            mean,
            centred,
            means: None,
            rounds: Rounds::new(),
        })
    }

    fn on_total(
        &mut self,
        progress: Progress<Vec<ZWide>>,
        io: &mut Io<'_, RoundMessage<36>>,
    ) -> Result<Progress<Value>, ProtocolError> {
        let Progress::Done(total) = progress else {
            return Ok(Progress::Continue);
        };
        let Some((samples, mean_x, mean_y)) = self.means else {
            let [samples, sum_x, sum_y] = total[..] else {
                unreachable!("the first sum has three elements")
            };
            let samples = rounds::count(samples)?;
            if samples == 0 {
                return Err(ProtocolError::Failed("no party has any value".into()));
            }
            let (mean_x, mean_y) = (reals::decode(sum_x, samples), reals::decode(sum_y, samples));
            self.means = Some((samples, mean_x, mean_y));
            // Shift this party's centred sums to the global means.
            let (dx, dy) = (self.mean.0 - mean_x, self.mean.1 - mean_y);
            let [xx, yy, xy, x, y] = self.centred;
            let n = self.count as f64;
            let vector = [
                xx + 2.0 * dx * x + n * dx * dx,
                yy + 2.0 * dy * y + n * dy * dy,
                xy + dx * y + dy * x + n * dx * dy,
            ];
            let progress = self
                .rounds
                .begin(vector.iter().map(|&c| reals::encode(c)).collect(), io)?;
            return self.on_total(progress, io);
        };
        let [xx, yy, xy] = total[..] else {
            unreachable!("the second sum has three elements")
        };
        let (xx, yy, xy) = (reals::decode(xx, 1), reals::decode(yy, 1), reals::decode(xy, 1));
        let n = samples as f64;
        let finite = |x: f64| x.is_finite().then_some(x);
        let slope = (xx > 0.0).then(|| xy / xx);
        let intercept = slope.map(|b| mean_y - b * mean_x);
        let through_origin = xx + n * mean_x * mean_x;
        Ok(Progress::Done(json!({
            "samples": samples,
            "covariance_mle": xy / n,
            "covariance": (samples > 1).then(|| xy / (n - 1.0)),
            "correlation_coefficient": (xx > 0.0 && yy > 0.0).then(|| xy / (xx.sqrt() * yy.sqrt())),
            "regression_slope": slope,
            "regression_interceipt": intercept,
            "regression_intercept": intercept,
            "regression_slope_only": (through_origin > 0.0).then(|| (xy + n * mean_x * mean_y) / through_origin).and_then(finite),
        })))
    }
}

impl Microprotocol for StatisticsBivariate {
    type Message = RoundMessage<36>;
    type Output = Value;

    fn start(&mut self, io: &mut Io<'_, RoundMessage<36>>) -> Result<Progress<Value>, ProtocolError> {
        let vector = vec![ZWide::from_u64(self.count), self.sum_x.encoded(), self.sum_y.encoded()];
        let progress = self.rounds.begin(vector, io)?;
        self.on_total(progress, io)
    }

    fn receive(
        &mut self,
        from: PartyIndex,
        message: RoundMessage<36>,
        io: &mut Io<'_, RoundMessage<36>>,
    ) -> Result<Progress<Value>, ProtocolError> {
        let progress = self.rounds.receive(from, message, io)?;
        self.on_total(progress, io)
    }
}
