//! SecureSum: the sum of every party's numbers, and how many numbers there were.
//!
//! Input: a number or a (nested) list of numbers; a party's values are first added up locally
//! with Python semantics, then encoded as the reference does, `int(total * 10^digits_after)`
//! (REFERENCE.md §4.1, §5). The encoded total and the count of values are summed with
//! [`AdditiveSum`] in Z_2^256, and the result is decoded as the reference decodes it, so every
//! `secure_sum_*` vector gives the reference's exact result. Output: `{"sum": f64, "samples": n}`.
//!
//! Parameters: `digits_after` (default 12, at most 40) sets the fixed-point precision;
//! `digits_before` (default 12) is accepted for compatibility and has no effect: the reference
//! used it to size masks over the integers, which leaked large inputs (W1); masks in the ring
//! hide every input, whatever its size. `bound` (optional, not the reference's): a public bound
//! on |sum|; see below.
//!
//! What each party learns: the total of the encoded contributions, exactly (see
//! [`AdditiveSum`]), and the number of values. The output rounds that total to a double, so the
//! total says more than the output whenever it has more than 53 significant bits: with three
//! parties, A learns B + C to 10^−digits_after, and when C is far larger than B, B's low digits
//! (invisible in the double) survive (totals 5, 12345.678901 and 3.1e25: A recovers B's total).
//! That is the reference's semantics, kept by default. With `bound` B, every party rounds its
//! encoded contribution to the public grid 2^⌊log2(B·10^digits_after)⌋−57−⌈log2 n⌉ units, so
//! the opened total carries at most ⌈log2 n⌉ + 4 bits more than a double at the bound, and the
//! sum is within 2^−58·B of the fixed-point sum (within one ulp when |sum| ≥ B/8); a party whose
//! own total exceeds B is refused. Messages: n·(n−1) in one hop below 5 parties, 2·(n−1) in
//! two hops from 5.

use crate::fixed_point::{self, EncodingError};
use crate::masks::Instance;
use crate::protocol::{Io, Microprotocol, PartyIndex, Progress, ProtocolError};
use crate::sum::additive_sum::{AdditiveSum, SumMessage};
use crate::z2k::Z256;
use num_bigint::BigInt;
use num_traits::Signed;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The largest `digits_after` accepted: 10^40 already uses 133 of the 240 bits a value may have.
pub const MAX_DIGITS_AFTER: u32 = 40;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecureSumParameters {
    #[serde(default = "default_digits")]
    pub digits_after: u32,
    #[serde(default = "default_digits")]
    pub digits_before: u32,
    /// A public bound on |sum|: contributions are rounded to a grid below its precision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<f64>,
}

fn default_digits() -> u32 {
    12
}

impl SecureSumParameters {
    pub fn validate(self) -> Result<Self, String> {
        if self.digits_after > MAX_DIGITS_AFTER {
            return Err(format!(
                "digits_after must be at most {MAX_DIGITS_AFTER}, got {}",
                self.digits_after
            ));
        }
        if let Some(bound) = self.bound.filter(|b| !(b.is_finite() && *b > 0.0)) {
            return Err(format!("bound must be a positive number, got {bound}"));
        }
        Ok(self)
    }

    /// The grid's exponent in encoded units (0: no rounding), for `parties` parties.
    fn grid_bits(self, parties: usize) -> u32 {
        let Some(bound) = self.bound else { return 0 };
        // bound = m · 2^e exactly; ⌊log2(m · 10^digits · 2^e)⌋ from the integer's length.
        let (m, e, _) = fixed_point::decompose(bound);
        let log = (BigInt::from(m) * fixed_point::power_of_ten(self.digits_after)).bits() as i64 - 1 + i64::from(e);
        let bits = log - 57 - i64::from(parties.next_power_of_two().trailing_zeros());
        bits.max(0) as u32
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecureSum {
    parameters: SecureSumParameters,
    sum: AdditiveSum,
}

impl SecureSum {
    /// Validates and encodes the local input; nothing is sent yet.
    pub fn new(parameters: SecureSumParameters, parties: usize, input: &Value) -> Result<SecureSum, EncodingError> {
        let (total, count) = fixed_point::sum_values(input)?;
        let encoded = fixed_point::encode(&total, parameters.digits_after)?;
        if let Some(bound) = parameters.bound {
            let magnitude = fixed_point::decode(&encoded.abs(), parameters.digits_after);
            if magnitude > bound {
                return Err(EncodingError::Invalid(format!(
                    "this party's total {magnitude:e} exceeds the bound {bound:e}"
                )));
            }
        }
        let encoded = fixed_point::round_to_power_of_two(&encoded, parameters.grid_bits(parties));
        let vector = vec![Z256::from_bigint(&encoded), Z256::from_u64(count)];
        Ok(SecureSum {
            parameters,
            sum: AdditiveSum::new(vector, parties, Instance::default()),
        })
    }

    fn finish(&self, progress: Progress<Vec<Z256>>) -> Result<Progress<Value>, ProtocolError> {
        let Progress::Done(total) = progress else {
            return Ok(Progress::Continue);
        };
        let sum = fixed_point::decode(&total[0].to_signed_bigint(), self.parameters.digits_after);
        // Counts are below 2^64 at every party, so their sum fits unless a party lied.
        let samples = total[1].to_u64().ok_or_else(|| ProtocolError::Malformed {
            from: 0,
            reason: "the reconstructed count of values is not a plausible number".into(),
        })?;
        Ok(Progress::Done(json!({"sum": sum, "samples": samples})))
    }
}

impl Microprotocol for SecureSum {
    type Message = SumMessage;
    type Output = Value;

    fn start(&mut self, io: &mut Io<'_, SumMessage>) -> Result<Progress<Value>, ProtocolError> {
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
