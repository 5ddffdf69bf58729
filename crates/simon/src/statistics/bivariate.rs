//! StatisticsBivariate: covariance, correlation and the regression line of paired values, from
//! centred cross sums, each within one unit in the last place of the exact value (or a stated
//! absolute bound where it may cancel to zero), whatever the data, in a constant number of
//! rounds.
//!
//! Input: a list of pairs `[x, y]` of numbers. Rounds: MinimumMaximum's bisection for x and y
//! at once (8 rounds; the count in the first), which fixes each variable's [`Frame`]; sum A of
//! Σ(x − min x) and Σ(y − min y) on their frames' grids; sum B of the centred sums Σu², Σv²,
//! Σuv with u = (x − x̄)/2^e_x, v = (y − ȳ)/2^e_y about the opened means, each party's share
//! computed from its own double-double summary shifted to them (as
//! [`crate::statistics::moments`]). Every contribution is rounded to a public grid, and every
//! output computed exactly from the opened totals and rounded once.
//!
//! Output (the reference's 7 keys, §4.9): `samples` (an int), `covariance_mle`, `covariance`,
//! `correlation_coefficient`, `regression_slope`, `regression_interceipt` (sic) and its corrected
//! spelling `regression_intercept`, `regression_slope_only` (through the origin); `null` where
//! undefined (one pair; no spread in x or y; every x 0 for the slope through the origin) or
//! beyond the double range.
//!
//! What each party learns: the output, the extremes of x and y, and the opened totals: n, both
//! sums (on the grids exact centring needs, see [`Frame::offset_grid`]) and the three centred
//! sums (on grids at the outputs' precision). The reference ran 30 sub-protocols and broadcast
//! each party's extremes (W2).

use crate::fixed_point::EncodingError;
use crate::order::bisection::MAX_BITS_PER_ROUND;
use crate::order::doubles;
use crate::order::minimum_maximum::{Extremes, MinimumMaximum};
use crate::protocol::{Io, Microprotocol, PartyIndex, Progress, ProtocolError};
use crate::statistics::dd::{Dd, split_of};
use crate::statistics::exact::{number, signed_sqrt_to_f64, to_f64};
use crate::statistics::moments::{Axis, BITS, Centre, Frame};
use crate::statistics::reals::{ExactSum, Grid};
use crate::sum::rounds::{RoundMessage, Rounds};
use crate::z2k::ZWide;
use num_rational::BigRational;
use num_traits::{One, Zero};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BivariateMessage {
    ExtremesX(RoundMessage<1>),
    ExtremesY(RoundMessage<1>),
    Sums(RoundMessage<36>),
}

/// Σu, Σv, Σu², Σv², Σuv of a party's pairs, each variable in its own [`Axis`].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CrossSums {
    axes: [Axis; 2],
    sums: [Dd; 5],
}

impl CrossSums {
    fn of(pairs: &[(f64, f64)], exact_sums: [ExactSum; 2]) -> CrossSums {
        let count = pairs.len() as u64;
        let axes = [
            Axis::of(pairs.iter().map(|p| p.0), exact_sums[0], count),
            Axis::of(pairs.iter().map(|p| p.1), exact_sums[1], count),
        ];
        let factors = axes.map(|a| a.factors());
        let mut sums = [Dd::ZERO; 5];
        for &(x, y) in pairs {
            let (u, v) = (axes[0].offset(x, &factors[0]), axes[1].offset(y, &factors[1]));
            let (us, vs) = (split_of(u.hi), split_of(v.hi));
            let terms = [u, v, u.mul_split(u, us), v.mul_split(v, vs), u.mul_split(v, vs)];
            for (sum, term) in sums.iter_mut().zip(terms) {
                sum.accumulate(term.hi, term.lo);
            }
        }
        CrossSums {
            axes,
            sums: sums.map(|s| s + Dd::ZERO),
        }
    }

    /// Σu'², Σv'², Σu'v' in the public frames: u' = t + 2^r u in each variable.
    fn centred(&self, count: u64, centres: [&Centre; 2], units: [i64; 2]) -> [Dd; 3] {
        // A party without values adds nothing (its frame's shift may be huge: 0·∞ is no 0).
        if count == 0 {
            return [Dd::ZERO; 3];
        }
        let [(tx, rx), (ty, ry)] = [0, 1].map(|i| self.axes[i].shift(centres[i], units[i]));
        let [u, v, uu, vv, uv] = self.sums;
        let n = Dd::from_f64(count as f64);
        let two = Dd::from_f64(2.0);
        [
            n * tx * tx + two * tx * u.scaled(rx) + uu.scaled(2 * rx),
            n * ty * ty + two * ty * v.scaled(ry) + vv.scaled(2 * ry),
            n * tx * ty + tx * v.scaled(ry) + ty * u.scaled(rx) + uv.scaled(rx + ry),
        ]
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatisticsBivariate {
    count: u64,
    exact_sums: [ExactSum; 2],
    cross: CrossSums,
    extremes: [MinimumMaximum; 2],
    /// (n, minimum, maximum) of x and of y, once found.
    found: [Option<(u64, f64, f64)>; 2],
    /// The total of sum A, once opened.
    first: Option<Vec<ZWide>>,
    rounds: Rounds<36>,
}

fn pair(item: &Value) -> Result<(f64, f64), EncodingError> {
    let number = |v: &Value| match v {
        Value::Number(n) => doubles::double(n),
        other => Err(EncodingError::NotANumber(doubles::kind(other))),
    };
    match item {
        Value::Array(xy) if xy.len() == 2 => Ok((number(&xy[0])?, number(&xy[1])?)),
        other => Err(EncodingError::Invalid(format!(
            "StatisticsBivariate takes a list of pairs [x, y], found {other}"
        ))),
    }
}

/// Σu², Σv² are at least 2·4^−2 in their units (two values are the extremes); the correlation
/// divides Σuv by √(Σu² Σv²) ≥ 1/8, so Σuv's grid is 2^−3 finer.
fn square_grid(parties: usize) -> Grid {
    Grid::below(-4, BITS - 2, parties)
}

fn cross_grid(parties: usize) -> Grid {
    Grid::below(-4, BITS, parties)
}

impl StatisticsBivariate {
    pub fn new(input: &Value) -> Result<StatisticsBivariate, EncodingError> {
        let Value::Array(items) = input else {
            return Err(EncodingError::Invalid(
                "StatisticsBivariate takes a list of pairs [x, y]".into(),
            ));
        };
        let pairs = items.iter().map(pair).collect::<Result<Vec<_>, _>>()?;
        let exact_sums = [
            ExactSum::of(pairs.iter().map(|p| p.0)),
            ExactSum::of(pairs.iter().map(|p| p.1)),
        ];
        let xs: Vec<f64> = pairs.iter().map(|p| p.0).collect();
        let ys: Vec<f64> = pairs.iter().map(|p| p.1).collect();
        Ok(StatisticsBivariate {
            count: pairs.len() as u64,
            exact_sums,
            cross: CrossSums::of(&pairs, exact_sums),
            // Mask sequences: x's extremes 0, y's 1, the sums 2.
            extremes: [
                MinimumMaximum::of_values(MAX_BITS_PER_ROUND, &xs),
                MinimumMaximum::of_values(MAX_BITS_PER_ROUND, &ys).in_sequence(1),
            ],
            found: [None, None],
            first: None,
            rounds: Rounds::sequence(2),
        })
    }

    fn frames(&self, parties: usize) -> Option<[Frame; 2]> {
        let [Some(x), Some(y)] = self.found else {
            return None;
        };
        Some([x, y].map(|(n, min, max)| Frame::new(n, min, max, parties)))
    }

    fn on_extremes(
        &mut self,
        axis: usize,
        progress: Progress<Extremes>,
        io: &mut Io<'_, BivariateMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        let Progress::Done(extremes) = progress else {
            return Ok(Progress::Continue);
        };
        self.found[axis] = Some((extremes.samples, extremes.minimum.value, extremes.maximum.value));
        let Some(frames) = self.frames(io.parties()) else {
            return Ok(Progress::Continue);
        };
        let vector = (0..2)
            .map(|i| {
                frames[i]
                    .offset_grid()
                    .encode(&frames[i].offset(self.exact_sums[i], self.count))
            })
            .collect();
        let progress = io.child(BivariateMessage::Sums, |io| self.rounds.begin(vector, io))?;
        self.on_sums(progress, io)
    }

    fn on_sums(
        &mut self,
        progress: Progress<Vec<ZWide>>,
        io: &mut Io<'_, BivariateMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        let Progress::Done(total) = progress else {
            return Ok(Progress::Continue);
        };
        let parties = io.parties();
        let frames = self.frames(parties).expect("the sums follow the extremes");
        let Some(first) = &self.first else {
            let sums = [0, 1].map(|i| frames[i].sum(total[i]));
            let centres = [0, 1].map(|i| frames[i].centre(&sums[i]));
            let centred = self
                .cross
                .centred(self.count, [&centres[0], &centres[1]], [frames[0].unit, frames[1].unit]);
            let grids = [square_grid(parties), square_grid(parties), cross_grid(parties)];
            let vector = grids
                .iter()
                .zip(centred)
                .map(|(g, c)| g.encode(&c.to_rational()))
                .collect();
            self.first = Some(total);
            let progress = io.child(BivariateMessage::Sums, |io| self.rounds.begin(vector, io))?;
            return self.on_sums(progress, io);
        };
        Ok(Progress::Done(statistics(&frames, first, &total)))
    }
}

/// The seven outputs, exactly from the opened totals.
fn statistics(frames: &[Frame; 2], first: &[ZWide], second: &[ZWide]) -> Value {
    let [fx, fy] = frames;
    let parties = fx.parties;
    let (sx, sy) = (fx.sum(first[0]), fy.sum(first[1]));
    let (cx, cy) = (fx.centre(&sx).value(fx.unit), fy.centre(&sy).value(fy.unit));
    let sxx = fx.in_units(square_grid(parties).decode(second[0]), 2);
    let syy = fy.in_units(square_grid(parties).decode(second[1]), 2);
    let sxy = fx.in_units(fy.in_units(cross_grid(parties).decode(second[2]), 1), 1);
    let n = fx.n();
    let slope = (!sxx.is_zero()).then(|| &sxy / &sxx);
    let intercept = slope.as_ref().map(|b| to_f64(&((&sy - b * &sx) / &n)));
    // Raw sums about 0 from the centred ones: Σx² and Σxy.
    let two = BigRational::from_integer(2.into());
    let squares = &sxx + &two * &cx * (&sx - &n * &cx) + &n * &cx * &cx;
    let products = &sxy + &cx * (&sy - &n * &cy) + &cy * (&sx - &n * &cx) + &n * &cx * &cy;
    let correlation = (!sxx.is_zero() && !syy.is_zero()).then(|| {
        let square = &sxy * &sxy / (&sxx * &syy);
        signed_sqrt_to_f64(&sxy, &square)
    });
    json!({
        "samples": fx.samples,
        "covariance_mle": number(Some(to_f64(&(&sxy / &n)))),
        "covariance": number((fx.samples > 1).then(|| to_f64(&(&sxy / (&n - BigRational::one()))))),
        "correlation_coefficient": number(correlation),
        "regression_slope": number(slope.as_ref().map(to_f64)),
        "regression_interceipt": number(intercept),
        "regression_intercept": number(intercept),
        "regression_slope_only": number((!squares.is_zero()).then(|| to_f64(&(products / squares)))),
    })
}

impl Microprotocol for StatisticsBivariate {
    type Message = BivariateMessage;
    type Output = Value;

    fn start(&mut self, io: &mut Io<'_, BivariateMessage>) -> Result<Progress<Value>, ProtocolError> {
        let progress = io.child(BivariateMessage::ExtremesX, |io| self.extremes[0].start(io))?;
        self.on_extremes(0, progress, io)?;
        let progress = io.child(BivariateMessage::ExtremesY, |io| self.extremes[1].start(io))?;
        self.on_extremes(1, progress, io)
    }

    fn receive(
        &mut self,
        from: PartyIndex,
        message: BivariateMessage,
        io: &mut Io<'_, BivariateMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        match message {
            BivariateMessage::ExtremesX(message) => {
                let progress = io.child(BivariateMessage::ExtremesX, |io| {
                    self.extremes[0].receive(from, message, io)
                })?;
                self.on_extremes(0, progress, io)
            }
            BivariateMessage::ExtremesY(message) => {
                let progress = io.child(BivariateMessage::ExtremesY, |io| {
                    self.extremes[1].receive(from, message, io)
                })?;
                self.on_extremes(1, progress, io)
            }
            BivariateMessage::Sums(message) => {
                let progress = io.child(BivariateMessage::Sums, |io| self.rounds.receive(from, message, io))?;
                self.on_sums(progress, io)
            }
        }
    }
}
