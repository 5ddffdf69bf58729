//! SecureSum: the sum of every party's numbers, and how many numbers there were.
//!
//! Input: a number or a (nested) list of numbers. Output: `{"sum": f64, "samples": n}`. The
//! parameters choose one of two encodings, and so the ring the sum runs in; every party agrees on
//! them (they are part of the definition), so no party needs to know which API a computation came
//! through.
//!
//! - **Exact** (no `digits_after`, `/v1`'s default): a party adds its values exactly, ints as the
//!   integers they are and doubles as the binary fractions they are, and its total T (a multiple
//!   of 2^−1074) travels as the integer T · 2^1100 in Z_2^2304 ([`crate::exact_sum`]). The
//!   sum is the exact total of all values, rounded once to the nearest double (ties to even):
//!   42.7 + 32.3 + 25.9 gives 100.9, as a user (or numpy, or StatisticsUnivariate) expects.
//!   A party's total must lie strictly within ±2^1100 (about ±1.36e331): with at most 2^14
//!   parties the total then stays below 2^2214, far from wrapping. A sum beyond the largest double
//!   fails the computation at every party (`no_result`).
//! - **Fixed point** (`digits_after` given, at most 40; the federatedsecure API sets 12, the
//!   original's default): a party's values are added up with Python semantics, then encoded as
//!   the reference does, `int(total * 10^digits_after)` (REFERENCE.md §4.1, §5); the encoded
//!   totals and the count are summed in Z_2^256 and the result is decoded as the reference
//!   decodes it, so every `secure_sum_*` vector gives the reference's exact result.
//!
//! `digits_before` is accepted for compatibility and has no effect: the reference used it to size
//! masks over the integers, which leaked large inputs (W1); masks in the ring hide every input,
//! whatever its size. It is normalised to 12 in fixed point and dropped in exact mode. `bound`
//! (optional, not the reference's): a public bound B on |sum| and on each party's total; see
//! below.
//!
//! What each party learns: the opened total of the encoded contributions, exactly (see
//! [`AdditiveSum`]), and the number of values. The output rounds that total to a double, so the
//! total says more than the output whenever it has more than 53 significant bits: with three
//! parties, A learns B + C, and when C is far larger than B, B's low digits (invisible in the
//! double) survive (totals 5, 12345.678901 and 3.1e25: A recovers B's total). In fixed point the
//! total is exact to 10^−digits_after (the reference's semantics, which its vectors pin); in
//! exact mode it is the exact sum of the values as binary fractions, every bit of it down to
//! 2^−1074. With `bound` B, every party rounds its contribution to a public grid below the
//! precision of a double at B: 2^⌊log2(B·10^digits_after)⌋−57−⌈log2 n⌉ units of 10^−digits_after
//! in fixed point, 2^⌊log2 B⌋−57−⌈log2 n⌉ in exact mode (where the grid's multiples then travel
//! in Z_2^256). The opened total carries at most ⌈log2 n⌉ + 4 bits more than a double at the
//! bound, and the sum is within 2^−58·B of the unrounded sum (within one ulp when |sum| ≥ B/8);
//! a party whose own total exceeds B is refused. Messages: n·(n−1) in one hop below 5 parties,
//! 2·(n−1) in two hops from 5.
//!
//! **With `dp`** ([`crate::dp`], clipped and noised by [`crate::dp::clipping`], which
//! StatisticsUnivariate's `dp` shares; needs `digits_after` and `dp.bounds` [lo, hi], refuses
//! `bound`): each value is clipped to [lo, hi] and put on the grid 10^−digits_after by itself (exact
//! rationals, nearest, ties away from zero), and a party's total is the exact sum of those grid
//! values. Rounding is monotone and per value, so adding or removing one record moves the sum by
//! at most Δ = max(|grid(lo)|, |grid(hi)|) ≤ ⌈max(|lo|, |hi|)·10^digits_after⌉ units: the
//! sensitivity, exactly, in the units the sum runs in. Each party adds a noise share calibrated
//! to Δ and half the budget to its total, and one calibrated to 1 and the other half to its
//! count, before the masked sum; the output is the noisy sum and the noisy (signed) count, with
//! `"dp"` naming both mechanisms. The sum is then *not* the reference's Python float sum: that
//! rounds each partial sum to a double, so one record could move it by more than Δ.

use crate::dp::DpParameters;
use crate::dp::clipping::{self, Clipping};
use crate::exact_sum::{ExactSum, FRACTION_BITS};
use crate::fixed_point::{self, EncodingError, PyNumber};
use crate::masks::Instance;
use crate::protocol::{Io, Microprotocol, PartyIndex, Progress, ProtocolError};
use crate::sum::additive_sum::{AdditiveSum, SumMessage};
use crate::z2k::{WIDE_LIMBS, Z256, ZWide, Zk};
use num_bigint::BigInt;
use num_traits::{One, Signed, Zero};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The largest `digits_after` accepted: 10^40 already uses 133 of the 240 bits a value may have.
pub const MAX_DIGITS_AFTER: u32 = 40;

/// Refuses a `digits_after` beyond `MAX_DIGITS_AFTER`, for every protocol whose values go
/// through this sum on its grid.
pub fn check_digits_after(digits: u32) -> Result<u32, String> {
    if digits > MAX_DIGITS_AFTER {
        return Err(format!("digits_after must be at most {MAX_DIGITS_AFTER}, got {digits}"));
    }
    Ok(digits)
}

/// In exact mode a party's total must lie strictly within ±2^EXACT_LIMIT_BITS (about ±1.36e331):
/// scaled by 2^1100 it stays below 2^2200, and the sum of 2^14 of them below 2^2214, far from
/// wrapping in Z_2^2304.
pub const EXACT_LIMIT_BITS: u64 = 1100;

/// `digits_before` as the reference defaulted it, in fixed point.
const DEFAULT_DIGITS_BEFORE: u32 = 12;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecureSumParameters {
    /// Absent: the exact sum. Present: the reference's fixed point with this many decimals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digits_after: Option<u32>,
    /// No effect; kept (12 by default) in fixed point, dropped in exact mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digits_before: Option<u32>,
    /// A public bound on |sum|: contributions are rounded to a grid below its precision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<f64>,
    /// Differential privacy: each value clipped to `dp.bounds` on the grid 10^−digits_after,
    /// noisy sum and count (see the module's documentation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp: Option<DpParameters>,
}

impl SecureSumParameters {
    /// Checks the parameters and normalises them: an absent `digits_after` stays absent (exact
    /// mode), `digits_before` is 12 by default in fixed point and dropped in exact mode.
    pub fn validate(self, parties: usize) -> Result<Self, String> {
        if let Some(digits) = self.digits_after {
            check_digits_after(digits)?;
        }
        if let Some(bound) = self.bound.filter(|b| !(b.is_finite() && *b > 0.0)) {
            return Err(format!("bound must be a positive number, got {bound}"));
        }
        let digits_before = self
            .digits_after
            .map(|_| self.digits_before.unwrap_or(DEFAULT_DIGITS_BEFORE));
        let dp = match self.dp.clone() {
            None => None,
            Some(dp) => Some(self.validate_dp(dp, parties)?),
        };
        Ok(SecureSumParameters {
            digits_before,
            dp,
            ..self
        })
    }

    fn validate_dp(&self, dp: DpParameters, parties: usize) -> Result<DpParameters, String> {
        let dp = dp.validate(parties, true)?;
        clipping::grid(self.digits_after)?;
        if self.bound.is_some() {
            // `bound` rounds a party's *total* to a grid: one record more could then move the
            // sum by a grid step beyond the clipped value, which the sensitivity does not cover.
            return Err("dp takes no bound: dp.bounds clip each value instead".into());
        }
        let checked = SecureSumParameters {
            dp: Some(dp.clone()),
            ..self.clone()
        };
        clipping(&checked).mechanisms(parties)?;
        Ok(dp)
    }

    /// In fixed point, the grid's exponent in encoded units (0: no rounding), for `parties`
    /// parties.
    fn grid_bits(&self, digits_after: u32, parties: usize) -> u32 {
        let Some(bound) = self.bound else { return 0 };
        // bound = m · 2^e exactly; ⌊log2(m · 10^digits · 2^e)⌋ from the integer's length.
        let (m, e, _) = fixed_point::decompose(bound);
        let log = (BigInt::from(m) * fixed_point::power_of_ten(digits_after)).bits() as i64 - 1 + i64::from(e);
        let bits = log - 57 - i64::from(parties.next_power_of_two().trailing_zeros());
        bits.max(0) as u32
    }
}

/// One party's SecureSum, in the ring its parameters choose.
#[derive(Debug, Clone)]
pub enum Encoded {
    /// Fixed point, or exact on a bound's grid: Z_2^256.
    Z256(SecureSum),
    /// Exact, without a bound: Z_2^2304.
    Wide(SecureSum<WIDE_LIMBS>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecureSum<const L: usize = 4> {
    parameters: SecureSumParameters,
    /// In exact mode with a bound, the exponent g of the grid 2^g the contributions are
    /// multiples of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    grid: Option<i64>,
    sum: AdditiveSum<L>,
    /// With `dp`, once noise is added: the output's `"dp"` object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dp: Option<Value>,
}

/// With `dp`: how the values are clipped and noised (sum and count, half the budget each).
fn clipping(parameters: &SecureSumParameters) -> Clipping<'_> {
    let dp = parameters.dp.as_ref().expect("with dp");
    Clipping::new(
        dp,
        parameters.digits_after.expect("validated: dp needs digits_after"),
        false,
    )
}

/// Validates and encodes the local input; nothing is sent yet.
pub fn encode(parameters: SecureSumParameters, parties: usize, input: &Value) -> Result<Encoded, EncodingError> {
    if parameters.dp.is_some() {
        let vector = clipping(&parameters).encode(input)?;
        return Ok(Encoded::Z256(SecureSum::with(parameters, None, vector, parties)));
    }
    if let Some(digits_after) = parameters.digits_after {
        return fixed(parameters, digits_after, parties, input).map(Encoded::Z256);
    }
    let (total, count) = exact_total(input)?;
    let Some(bound) = parameters.bound else {
        let vector = vec![ZWide::from_bigint(&total), ZWide::from_u64(count)];
        return Ok(Encoded::Wide(SecureSum::with(parameters, None, vector, parties)));
    };
    let (m, e, _) = fixed_point::decompose(bound);
    let scaled_bound = BigInt::from(m) << (i64::from(e) + i64::from(FRACTION_BITS)) as usize;
    if total.magnitude() > scaled_bound.magnitude() {
        let magnitude = fixed_point::ratio_to_f64(&total.abs(), &(BigInt::one() << FRACTION_BITS as usize));
        return Err(EncodingError::Invalid(format!(
            "this party's total {magnitude:e} exceeds the bound {bound:e}"
        )));
    }
    // 2^⌊log2 B⌋ − 57 − ⌈log2 n⌉, as the fixed-point grid and the statistics' `Grid::below`.
    let floor_log2 = 63 - i64::from(m.leading_zeros()) + i64::from(e);
    let grid = floor_log2 - 57 - i64::from(parties.next_power_of_two().trailing_zeros());
    // The total in units of the grid, to the nearest (ties upward): below 2^(59 + ⌈log2 n⌉).
    let shift = grid + i64::from(FRACTION_BITS);
    let units = if shift > 0 {
        fixed_point::round_to_power_of_two(&total, shift as u32) >> shift as usize
    } else {
        total << (-shift) as usize
    };
    let vector = vec![Z256::from_bigint(&units), Z256::from_u64(count)];
    Ok(Encoded::Z256(SecureSum::with(parameters, Some(grid), vector, parties)))
}

/// The reference's encoding: Python's sum, `int(total * 10^digits_after)`, then the bound's grid.
fn fixed(
    parameters: SecureSumParameters,
    digits_after: u32,
    parties: usize,
    input: &Value,
) -> Result<SecureSum, EncodingError> {
    let (total, count) = fixed_point::sum_values(input)?;
    let encoded = fixed_point::encode(&total, digits_after)?;
    if let Some(bound) = parameters.bound {
        let magnitude = fixed_point::decode(&encoded.abs(), digits_after);
        if magnitude > bound {
            return Err(EncodingError::Invalid(format!(
                "this party's total {magnitude:e} exceeds the bound {bound:e}"
            )));
        }
    }
    let encoded = fixed_point::round_to_power_of_two(&encoded, parameters.grid_bits(digits_after, parties));
    let vector = vec![Z256::from_bigint(&encoded), Z256::from_u64(count)];
    Ok(SecureSum::with(parameters, None, vector, parties))
}

/// A party's values added up exactly, as T · 2^1100 (an integer: every double is a multiple of
/// 2^−1074), and how many there are; refused unless |T| < 2^[`EXACT_LIMIT_BITS`].
pub fn exact_total(input: &Value) -> Result<(BigInt, u64), EncodingError> {
    let mut ints = BigInt::zero();
    let mut doubles = ExactSum::default();
    let count = fixed_point::for_each_number(input, |number| {
        match number {
            PyNumber::Int(int) => ints += int,
            PyNumber::Float(float) => doubles.add(float),
        }
        Ok(())
    })?;
    let total = (ints << FRACTION_BITS as usize) + doubles.encoded().to_signed_bigint();
    if total.bits() > EXACT_LIMIT_BITS + u64::from(FRACTION_BITS) {
        return Err(EncodingError::Invalid(format!(
            "input out of range: the sum of a party's values must lie strictly within ±2^{EXACT_LIMIT_BITS} \
             (about ±1.36e331), got about ±2^{}",
            total.bits() - 1 - u64::from(FRACTION_BITS)
        )));
    }
    Ok((total, count))
}

impl<const L: usize> SecureSum<L> {
    fn with(parameters: SecureSumParameters, grid: Option<i64>, vector: Vec<Zk<L>>, parties: usize) -> Self {
        SecureSum {
            parameters,
            grid,
            sum: AdditiveSum::new(vector, parties, Instance::default()),
            dp: None,
        }
    }

    /// With `dp`, before the sum masks it: this party's noise shares on its total and its count,
    /// from the node's CSPRNG; and the output's `"dp"` object.
    fn add_noise(&mut self, io: &mut Io<'_, SumMessage<L>>) -> Result<(), ProtocolError> {
        if self.parameters.dp.is_none() {
            return Ok(());
        }
        let parties = io.parties();
        let input = self.sum.input_mut().expect("noise is added before the sum starts");
        let described = clipping(&self.parameters)
            .add_noise(input, parties, io.rng())
            .map_err(ProtocolError::Failed)?;
        self.dp = Some(described);
        Ok(())
    }

    /// The opened total as a double: decoded as the reference decodes fixed point, or the exact
    /// total rounded once.
    fn value(&self, total: Zk<L>) -> Result<f64, ProtocolError> {
        let total = total.to_signed_bigint();
        let exponent = match (self.parameters.digits_after, self.grid) {
            (Some(digits_after), _) => return Ok(fixed_point::decode(&total, digits_after)),
            (None, Some(grid)) => grid,
            (None, None) => -i64::from(FRACTION_BITS),
        };
        let sum = if exponent >= 0 {
            fixed_point::ratio_to_f64(&(total << exponent as usize), &BigInt::one())
        } else {
            fixed_point::ratio_to_f64(&total, &(BigInt::one() << (-exponent) as usize))
        };
        if sum.is_finite() {
            Ok(sum)
        } else {
            Err(ProtocolError::Failed(
                "the sum is beyond the range of doubles (about ±1.8e308)".into(),
            ))
        }
    }

    fn finish(&self, progress: Progress<Vec<Zk<L>>>) -> Result<Progress<Value>, ProtocolError> {
        let Progress::Done(total) = progress else {
            return Ok(Progress::Continue);
        };
        if let Some(dp) = &self.dp {
            let noisy = clipping(&self.parameters).open(&total)?;
            let sum = clipping(&self.parameters).decode(&noisy.sum);
            return Ok(Progress::Done(json!({"sum": sum, "samples": noisy.samples, "dp": dp})));
        }
        let sum = self.value(total[0])?;
        // Counts are below 2^64 at every party, so their sum fits unless a party lied.
        let samples = total[1].to_u64().ok_or_else(|| ProtocolError::Malformed {
            from: 0,
            reason: "the reconstructed count of values is not a plausible number".into(),
        })?;
        Ok(Progress::Done(json!({"sum": sum, "samples": samples})))
    }
}

impl<const L: usize> Microprotocol for SecureSum<L> {
    type Message = SumMessage<L>;
    type Output = Value;

    fn start(&mut self, io: &mut Io<'_, SumMessage<L>>) -> Result<Progress<Value>, ProtocolError> {
        self.add_noise(io)?;
        let progress = self.sum.start(io)?;
        self.finish(progress)
    }

    fn receive(
        &mut self,
        from: PartyIndex,
        message: SumMessage<L>,
        io: &mut Io<'_, SumMessage<L>>,
    ) -> Result<Progress<Value>, ProtocolError> {
        let progress = self.sum.receive(from, message, io)?;
        self.finish(progress)
    }
}
