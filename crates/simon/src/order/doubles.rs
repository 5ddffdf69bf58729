//! Numbers in order: the order-preserving map from doubles to 64-bit keys on which order
//! statistics bisect, and the reading of JSON numbers for them.
//!
//! A key is the double's bit pattern with the sign bit flipped for non-negative values and all
//! bits flipped for negative ones, so that keys compare as the doubles do (−0.0 just below 0.0).
//! Every finite double has its own key, so a bisection over keys is exact and ends after at most
//! 64 halvings. JSON integers take part as the doubles they are equal to; an integer no double
//! equals (beyond ±2^53, with low bits set) is refused rather than silently rounded.

use crate::fixed_point::EncodingError;
use num_bigint::BigInt;
use num_traits::FromPrimitive;
use serde_json::{Number, Value, json};

/// A number as an order statistic sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ordered {
    pub value: f64,
    /// Whether the JSON text was an integer (`3`, not `3.0`): results keep the type.
    pub int: bool,
}

impl Ordered {
    pub fn key(self) -> u64 {
        key(self.value)
    }

    /// The JSON number: an integer if it was one.
    pub fn to_json(self) -> Value {
        if self.int {
            integral_json(self.value)
        } else {
            json!(self.value)
        }
    }
}

/// The JSON integer equal to an integral double.
pub fn integral_json(value: f64) -> Value {
    let int = BigInt::from_f64(value).expect("integral doubles are integers");
    serde_json::from_str(&int.to_string()).expect("an integer is a JSON number")
}

pub fn key(value: f64) -> u64 {
    let bits = value.to_bits();
    if bits >> 63 == 0 { bits | 1 << 63 } else { !bits }
}

pub fn from_key(key: u64) -> f64 {
    if key >> 63 == 1 {
        f64::from_bits(key & !(1 << 63))
    } else {
        f64::from_bits(!key)
    }
}

/// The double nearest to a JSON number, refused if it is beyond the range of doubles.
pub fn double(number: &Number) -> Result<f64, EncodingError> {
    let text = number.as_str();
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(EncodingError::NotFinite(text.to_string())),
    }
}

/// Reads a JSON number for ordering (integers must equal a double exactly).
pub fn number(number: &Number) -> Result<Ordered, EncodingError> {
    let text = number.as_str();
    let float = double(number)?;
    let int = !text.contains(['.', 'e', 'E']);
    if int && float.abs() >= 9007199254740992.0 {
        let exact: BigInt = text.parse().expect("JSON integers parse");
        if BigInt::from_f64(float) != Some(exact) {
            return Err(EncodingError::Invalid(format!(
                "the integer {text} has no exact double value; order statistics take integers up to \
                 ±2^53 (or pass it as a float)"
            )));
        }
    }
    Ok(Ordered { value: float, int })
}

/// Calls `each` for every number of a number or a (nested) list of numbers, as the reference's
/// array accumulator reads them; anything else is refused, naming its type.
fn each_number(input: &Value, each: &mut dyn FnMut(&Number) -> Result<(), EncodingError>) -> Result<(), EncodingError> {
    match input {
        Value::Number(n) => each(n),
        Value::Array(items) => items.iter().try_for_each(|item| each_number(item, each)),
        other => Err(EncodingError::NotANumber(kind(other))),
    }
}

/// The numbers of an input, for order statistics.
pub fn numbers(input: &Value) -> Result<Vec<Ordered>, EncodingError> {
    let mut out = Vec::new();
    each_number(input, &mut |n| {
        out.push(number(n)?);
        Ok(())
    })?;
    Ok(out)
}

/// The numbers of an input as doubles (integers rounded to the nearest), for moments.
pub fn doubles(input: &Value) -> Result<Vec<f64>, EncodingError> {
    let mut out = Vec::new();
    each_number(input, &mut |n| {
        out.push(double(n)?);
        Ok(())
    })?;
    Ok(out)
}

/// The name of a JSON value's type, for error messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_as_the_doubles_do() {
        let values = [
            -f64::MAX,
            -1e300,
            -1.0,
            -f64::MIN_POSITIVE,
            -5e-324,
            -0.0,
            0.0,
            5e-324,
            1.0,
            1.0 + f64::EPSILON,
            1e300,
            f64::MAX,
        ];
        for pair in values.windows(2) {
            assert!(key(pair[0]) < key(pair[1]), "{:e} < {:e}", pair[0], pair[1]);
        }
        for x in values {
            assert_eq!(from_key(key(x)).to_bits(), x.to_bits());
        }
    }

    #[test]
    fn integers_keep_their_type_and_must_be_exact() {
        let read = |text: &str| numbers(&serde_json::from_str(text).unwrap());
        assert_eq!(
            read("[3, 3.0]").unwrap(),
            [Ordered { value: 3.0, int: true }, Ordered { value: 3.0, int: false }]
        );
        assert_eq!(read("[[1], 2e3]").unwrap().len(), 2);
        assert!(read("9007199254740993").is_err());
        assert!(read("18014398509481984").is_ok());
        assert!(matches!(read("[1, \"2\"]"), Err(EncodingError::NotANumber("a string"))));
        assert_eq!(Ordered { value: -3.0, int: true }.to_json().to_string(), "-3");
        assert_eq!(
            Ordered {
                value: 12.5,
                int: false
            }
            .to_json()
            .to_string(),
            "12.5"
        );
    }
}
