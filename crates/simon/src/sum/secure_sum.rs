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
//! hide every input, whatever its size.
//!
//! What each party learns: the sum and the total number of values, nothing else (see
//! [`AdditiveSum`]). Messages: n·(n−1) in one hop below 5 parties, 2·(n−1) in two hops from 5.

use crate::fixed_point::{self, EncodingError};
use crate::masks::Instance;
use crate::protocol::{Io, Microprotocol, PartyIndex, Progress, ProtocolError};
use crate::sum::additive_sum::{AdditiveSum, SumMessage};
use crate::z2k::Z256;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The largest `digits_after` accepted: 10^40 already uses 133 of the 240 bits a value may have.
pub const MAX_DIGITS_AFTER: u32 = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecureSumParameters {
    #[serde(default = "default_digits")]
    pub digits_after: u32,
    #[serde(default = "default_digits")]
    pub digits_before: u32,
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
        Ok(self)
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
