//! StatisticsUnivariate with `dp`: the count, sum and sum of squares of all parties' values,
//! clipped and noised ([`crate::dp::clipping`]), in one masked sum, and what follows from them
//! by post-processing (mean, variance, standard deviation).
//!
//! Parameters: `digits_after` (the grid 10^−digits_after, at most 40) and `dp` with `"bounds":
//! [lo, hi]`, as SecureSum's `dp` takes them. Each value is clipped to [lo, hi] and put on the
//! grid; the slots are Σ grid(x) (sensitivity max(|grid(lo)|, |grid(hi)|) units), n (1) and
//! Σ grid(x²) (grid(max(lo², hi²)) units), each with a noise share of every party calibrated to
//! a third of the budget (ε/3 each, or ρ/3 each, or the ρ of an (ε, δ) request split in three).
//!
//! Output: `samples` (the noisy count, signed), `sum`, `mean` (the noisy sum over the noisy
//! count, clamped to [lo, hi]; `null` below one sample), `variance` ((Σx² − (Σx)²/n)/(n − 1)
//! from the noisy slots, clamped to [0, (hi − lo)²/4 · n/(n − 1)], which bounds the sample
//! variance of values in [lo, hi]; `null` below two samples), `standard_deviation` (its root),
//! and `"dp"` naming the mechanism of each slot. Nothing else: the extremes, the median and the
//! higher moments of the protocol without `dp` would be un-noised functions of the data and
//! void the guarantee, so they are neither computed nor opened.
//!
//! What each party learns: the three noisy totals, exactly as opened (the output's values are
//! functions of them alone). No round reveals anything un-noised: there is no extremes round,
//! and the clipping bounds are public parameters.

use crate::dp::DpParameters;
use crate::dp::clipping::{self, Clipping, Noisy};
use crate::fixed_point::EncodingError;
use crate::masks::Instance;
use crate::protocol::{Io, Microprotocol, PartyIndex, Progress, ProtocolError};
use crate::statistics::exact::{exact, number, sqrt_to_f64, to_f64};
use crate::sum::additive_sum::{AdditiveSum, SumMessage};
use crate::sum::secure_sum::check_digits_after;
use crate::z2k::Z256;
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Zero};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// StatisticsUnivariate's parameters: none without `dp`; with it, the grid and the bounds.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnivariateParameters {
    /// The grid 10^−digits_after the values are clipped on; with `dp` only (without it, the
    /// engine drops the reference's fixed-point parameters before they get here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digits_after: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp: Option<DpParameters>,
}

impl UnivariateParameters {
    pub fn validate(self, parties: usize) -> Result<UnivariateParameters, String> {
        let Some(dp) = self.dp else {
            return Ok(UnivariateParameters::default());
        };
        let dp = dp.validate(parties, true)?;
        let digits_after = check_digits_after(clipping::grid(self.digits_after)?)?;
        Clipping::new(&dp, digits_after, true).mechanisms(parties)?;
        Ok(UnivariateParameters {
            digits_after: Some(digits_after),
            dp: Some(dp),
        })
    }

    fn clipping(&self) -> Clipping<'_> {
        let dp = self.dp.as_ref().expect("with dp");
        Clipping::new(dp, self.digits_after.expect("validated: dp needs digits_after"), true)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoisyUnivariate {
    parameters: UnivariateParameters,
    sum: AdditiveSum,
    /// Once noise is added: the output's `"dp"` object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dp: Option<Value>,
}

impl NoisyUnivariate {
    /// Clips and encodes the local input; nothing is drawn or sent yet.
    pub fn new(
        parameters: &UnivariateParameters,
        parties: usize,
        input: &Value,
    ) -> Result<NoisyUnivariate, EncodingError> {
        let slots = parameters.clipping().encode(input)?;
        Ok(NoisyUnivariate {
            parameters: parameters.clone(),
            sum: AdditiveSum::new(slots, parties, Instance::default()),
            dp: None,
        })
    }

    fn finish(&self, progress: Progress<Vec<Z256>>) -> Result<Progress<Value>, ProtocolError> {
        let Progress::Done(total) = progress else {
            return Ok(Progress::Continue);
        };
        let clipping = self.parameters.clipping();
        let noisy = clipping.open(&total)?;
        let bounds = self.parameters.dp.as_ref().and_then(|dp| dp.bounds).expect("validated");
        let mut out = statistics(&clipping, &noisy, bounds.map(exact));
        out["dp"] = self.dp.clone().expect("noise was added at the start");
        Ok(Progress::Done(out))
    }
}

/// The output from the noisy slots alone (post-processing: it costs no privacy).
fn statistics(clipping: &Clipping<'_>, noisy: &Noisy, [lo, hi]: [BigRational; 2]) -> Value {
    let n = BigRational::from_integer(BigInt::from(noisy.samples));
    let sum = clipping.value(&noisy.sum);
    let squares = clipping.value(noisy.squares.as_ref().expect("univariate sums the squares"));
    let one = BigRational::one();
    let mean = (noisy.samples >= 1).then(|| (&sum / &n).clamp(lo.clone(), hi.clone()));
    let variance = (noisy.samples >= 2).then(|| {
        let n1 = &n - &one;
        let spread = &hi - &lo;
        let largest = &spread * &spread / BigRational::from_integer(4.into()) * &n / &n1;
        ((squares - &sum * &sum / &n) / n1).clamp(BigRational::zero(), largest)
    });
    json!({
        "samples": noisy.samples,
        "sum": clipping.decode(&noisy.sum),
        "mean": number(mean.as_ref().map(to_f64)),
        "variance": number(variance.as_ref().map(to_f64)),
        "standard_deviation": number(variance.as_ref().map(sqrt_to_f64)),
    })
}

impl Microprotocol for NoisyUnivariate {
    type Message = SumMessage;
    type Output = Value;

    /// Draws this party's noise shares from the node's CSPRNG into its slots before the sum
    /// masks them, so that the stored state before `start` holds no noise.
    fn start(&mut self, io: &mut Io<'_, SumMessage>) -> Result<Progress<Value>, ProtocolError> {
        let parties = io.parties();
        let slots = self.sum.input_mut().expect("noise is added before the sum starts");
        let described = self
            .parameters
            .clipping()
            .add_noise(slots, parties, io.rng())
            .map_err(ProtocolError::Failed)?;
        self.dp = Some(described);
        let progress = self.sum.start(io)?;
        self.finish(progress)
    }

    fn receive(
        &mut self,
        from: PartyIndex,
        message: SumMessage,
        io: &mut Io<'_, SumMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        let progress = self.sum.receive(from, message, io)?;
        self.finish(progress)
    }
}
