//! Fixed-point encoding of JSON numbers, reproducing the reference's Python arithmetic exactly.
//!
//! The reference sums a party's values with Python `+` (ints stay exact, an int meeting a float
//! becomes the correctly rounded float), encodes the local total as `int(o * 10**digits_after)`
//! (an f64 product truncated toward zero; ints stay exact) and decodes the reconstructed integer
//! with Python's int/int true division, which is correctly rounded (REFERENCE.md §5). This module
//! does the same with big integers, so results match the reference bit for bit. It owns numbers
//! only: no shares, no protocols.

use num_bigint::{BigInt, BigUint, Sign};
use num_integer::Integer;
use num_traits::{FromPrimitive, One, Pow, Signed, ToPrimitive, Zero};
use serde_json::{Number, Value};

/// The largest magnitude a party's encoded value may have: 2^240 (about 1.77e72). With at most
/// 2^14 parties the reconstructed sum stays below 2^254 and cannot wrap in Z_2^256.
pub const ENCODED_LIMIT_BITS: u64 = 240;

/// Why a value cannot be encoded. The messages are shown to API clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodingError {
    #[error("input must be a number or a (nested) list of numbers, found {0}")]
    NotANumber(&'static str),
    #[error(
        "input out of range: the sum of a party's values times 10^digits_after must lie strictly \
         within ±2^240 (about ±1.77e72), got {0}"
    )]
    OutOfRange(String),
    #[error("{0} is not a finite number (beyond the range of doubles)")]
    NotFinite(String),
    /// Any other problem with an input's shape or values, described for the client.
    #[error("{0}")]
    Invalid(String),
}

/// The longest number an input may spell, in characters. No microprotocol needs more (an encoded
/// sum stays within 2^240, 73 digits; a double needs at most 767 significant digits to be exact,
/// but 17 to be read right), and converting a longer one costs time quadratic in its length.
pub const MAX_NUMBER_CHARS: usize = 400;

/// Refuses an input that spells a number longer than [`MAX_NUMBER_CHARS`], before any number of
/// it is converted. Linear in the input.
pub fn check_number_lengths(input: &Value) -> Result<(), EncodingError> {
    match input {
        Value::Number(number) if number.as_str().len() > MAX_NUMBER_CHARS => Err(EncodingError::Invalid(format!(
            "a number of {} characters: at most {MAX_NUMBER_CHARS} are accepted",
            number.as_str().len()
        ))),
        Value::Array(items) => items.iter().try_for_each(check_number_lengths),
        Value::Object(map) => map.values().try_for_each(check_number_lengths),
        _ => Ok(()),
    }
}

/// A number as Python sees it: an exact integer or an IEEE double.
#[derive(Debug, Clone, PartialEq)]
pub enum PyNumber {
    Int(BigInt),
    Float(f64),
}

impl PyNumber {
    /// Reads a JSON number, keeping integers exact (the JSON text `42` is an int, `42.0` a float).
    pub fn from_json(number: &Number) -> Result<PyNumber, EncodingError> {
        let text = number.to_string();
        if let Ok(int) = text.parse::<BigInt>() {
            return Ok(PyNumber::Int(int));
        }
        match text.parse::<f64>() {
            Ok(float) if float.is_finite() => Ok(PyNumber::Float(float)),
            _ => Err(EncodingError::OutOfRange(text)),
        }
    }

    /// Python `a + b`.
    pub fn plus(self, other: PyNumber) -> Result<PyNumber, EncodingError> {
        Ok(match (self, other) {
            (PyNumber::Int(a), PyNumber::Int(b)) => PyNumber::Int(a + b),
            (PyNumber::Int(a), PyNumber::Float(b)) | (PyNumber::Float(b), PyNumber::Int(a)) => {
                PyNumber::Float(int_to_f64(&a)? + b)
            }
            (PyNumber::Float(a), PyNumber::Float(b)) => PyNumber::Float(a + b),
        })
    }
}

/// Python's `int -> float` conversion: correctly rounded, an error if it overflows.
fn int_to_f64(value: &BigInt) -> Result<f64, EncodingError> {
    let float = ratio_to_f64(value, &BigInt::one());
    if float.is_finite() {
        Ok(float)
    } else {
        Err(EncodingError::OutOfRange(value.to_string()))
    }
}

/// Calls `each` on every number of a party's input, in order: a number, or a list whose elements
/// (lists again, to any depth) are numbers. Returns how many numbers there were.
pub fn for_each_number(
    input: &Value,
    mut each: impl FnMut(PyNumber) -> Result<(), EncodingError>,
) -> Result<u64, EncodingError> {
    fn walk(
        value: &Value,
        each: &mut dyn FnMut(PyNumber) -> Result<(), EncodingError>,
        count: &mut u64,
    ) -> Result<(), EncodingError> {
        match value {
            Value::Number(number) => {
                each(PyNumber::from_json(number)?)?;
                *count += 1;
                Ok(())
            }
            Value::Array(items) => items.iter().try_for_each(|item| walk(item, each, count)),
            Value::Null => Err(EncodingError::NotANumber("null")),
            Value::Bool(_) => Err(EncodingError::NotANumber("a boolean")),
            Value::String(_) => Err(EncodingError::NotANumber("a string")),
            Value::Object(_) => Err(EncodingError::NotANumber("an object")),
        }
    }
    let mut count = 0;
    walk(input, &mut each, &mut count)?;
    Ok(count)
}

/// Python `sum` of a party's input, in order, starting from the int 0 (see [`for_each_number`]).
/// Returns the total and how many numbers it has.
pub fn sum_values(input: &Value) -> Result<(PyNumber, u64), EncodingError> {
    let mut acc = PyNumber::Int(BigInt::zero());
    let count = for_each_number(input, |number| {
        let current = std::mem::replace(&mut acc, PyNumber::Int(BigInt::zero()));
        acc = current.plus(number)?;
        Ok(())
    })?;
    Ok((acc, count))
}

/// A finite double as |x| = mantissa · 2^power (power ≥ −1074) and its sign.
#[inline(always)]
pub fn decompose(x: f64) -> (u64, i32, bool) {
    let bits = x.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mantissa, power) = if exponent == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), exponent - 1075)
    };
    (mantissa, power, bits >> 63 == 1)
}

pub(crate) fn power_of_ten(digits: u32) -> BigInt {
    BigInt::from(10u32).pow(digits)
}

/// `int(o * 10**digits_after)`, rejected if its magnitude reaches 2^240.
pub fn encode(value: &PyNumber, digits_after: u32) -> Result<BigInt, EncodingError> {
    let scale = power_of_ten(digits_after);
    let encoded = match value {
        PyNumber::Int(int) => int * scale,
        PyNumber::Float(float) => {
            // Python float * int converts the int to the nearest double first.
            let product = float * ratio_to_f64(&scale, &BigInt::one());
            if !product.is_finite() {
                return Err(EncodingError::OutOfRange(format!("{float:e}")));
            }
            BigInt::from_f64(product.trunc()).expect("a finite double is an integer after trunc")
        }
    };
    if encoded.bits() > ENCODED_LIMIT_BITS {
        let shown = match value {
            PyNumber::Int(int) => int.to_string(),
            PyNumber::Float(float) => format!("{float:e}"),
        };
        return Err(EncodingError::OutOfRange(shown));
    }
    Ok(encoded)
}

/// `value` rounded to the nearest multiple of 2^bits (ties upward): a contribution on a public
/// grid.
pub fn round_to_power_of_two(value: &BigInt, bits: u32) -> BigInt {
    if bits == 0 {
        return value.clone();
    }
    let half = BigInt::one() << (bits - 1);
    ((value + half) >> bits as usize) << bits as usize
}

/// `total / 10**digits_after` as Python computes it: the correctly rounded double.
pub fn decode(total: &BigInt, digits_after: u32) -> f64 {
    ratio_to_f64(total, &power_of_ten(digits_after))
}

/// The double nearest to `numerator / denominator` (ties to even), as Python's int true division.
/// `denominator` must be positive. Results beyond the double range become ±infinity; callers keep
/// their operands small enough (2^254 at most) that this never happens.
pub fn ratio_to_f64(numerator: &BigInt, denominator: &BigInt) -> f64 {
    assert!(denominator.is_positive(), "denominator must be positive");
    if numerator.is_zero() {
        return 0.0;
    }
    let negative = numerator.sign() == Sign::Minus;
    let a: &BigUint = numerator.magnitude();
    let b: &BigUint = denominator.magnitude();
    // Scale so that the integer quotient has 55 or 56 bits: 53 for the mantissa, one guard bit at
    // least, and the remainder as the sticky bit.
    let mut exponent = a.bits() as i64 - b.bits() as i64 - 55;
    let (n, d) = if exponent >= 0 {
        (a.clone(), b << exponent as usize)
    } else {
        (a << (-exponent) as usize, b.clone())
    };
    let (quotient, remainder) = n.div_rem(&d);
    let extra = quotient.bits() - 53;
    let mut mantissa = (&quotient >> extra as usize).to_u64().expect("53 bits fit in u64");
    let dropped = (&quotient & ((BigUint::one() << extra as usize) - 1u32))
        .to_u64()
        .expect("at most 3 dropped bits");
    let half = 1u64 << (extra - 1);
    let sticky = !remainder.is_zero();
    if dropped > half || (dropped == half && (sticky || mantissa & 1 == 1)) {
        mantissa += 1;
    }
    exponent += extra as i64;
    if mantissa == 1 << 53 {
        mantissa >>= 1;
        exponent += 1;
    }
    // The value is mantissa · 2^exponent with 2^52 ≤ mantissa < 2^53: 1.f · 2^(exponent + 52).
    let biased = exponent + 52 + 1023;
    let magnitude = if biased >= 2047 {
        f64::INFINITY
    } else if biased <= 0 {
        // Below the normal range the last bit weighs 2^−1074: round to that grid instead.
        let (quotient, remainder) = (a << 1074usize).div_rem(b);
        let twice: BigUint = remainder << 1usize;
        let up = twice > *b || (twice == *b && quotient.bit(0));
        let grid = quotient.to_u64().expect("at most 2^52") + u64::from(up);
        f64::from_bits(grid)
    } else {
        f64::from_bits(((biased as u64) << 52) | (mantissa - (1 << 52)))
    };
    if negative { -magnitude } else { magnitude }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn float(value: f64) -> PyNumber {
        PyNumber::Float(value)
    }

    #[test]
    fn division_is_correctly_rounded() {
        let cases: &[(&str, u32, f64)] = &[
            ("13703703579000000", 12, 13703.703579),
            ("1000000000000000000000000000000000000000000", 12, 1e30),
            ("-1", 12, -1e-12),
            ("258", 2, 2.58),
            ("1241", 1, 124.1),
            ("0", 12, 0.0),
        ];
        for (total, digits, want) in cases {
            let total: BigInt = total.parse().unwrap();
            assert_eq!(decode(&total, *digits), *want, "{total} / 10^{digits}");
        }
        // Ties to even at the 2^53 boundary: 2^53 + 1 is halfway between two doubles.
        let tie = BigInt::from(2u64.pow(53) + 1);
        assert_eq!(ratio_to_f64(&tie, &BigInt::one()), 2f64.powi(53));
        let above = BigInt::from(2u64.pow(53) + 3);
        assert_eq!(ratio_to_f64(&above, &BigInt::one()), 2f64.powi(53) + 4.0);
    }

    #[test]
    fn python_addition_semantics() {
        let (total, count) = sum_values(&json!([1, 2, [3, [4]]])).unwrap();
        assert_eq!((total, count), (PyNumber::Int(BigInt::from(10)), 4));
        let (total, _) = sum_values(&json!([0.1, 0.2])).unwrap();
        assert_eq!(total, float(0.1 + 0.2));
        let (total, count) = sum_values(&json!([])).unwrap();
        assert_eq!((total, count), (PyNumber::Int(BigInt::zero()), 0));
    }

    #[test]
    fn non_numbers_are_rejected_with_their_type() {
        for (input, kind) in [
            (json!("5"), "a string"),
            (json!([1, null]), "null"),
            (json!(true), "a boolean"),
            (json!({"x": 1}), "an object"),
        ] {
            assert_eq!(sum_values(&input).unwrap_err(), EncodingError::NotANumber(kind));
        }
    }

    #[test]
    fn rounding_to_a_power_of_two_is_to_the_nearest() {
        let round = |v: i64, bits| round_to_power_of_two(&BigInt::from(v), bits);
        assert_eq!(round(1000, 4), BigInt::from(1008));
        assert_eq!(round(1000, 0), BigInt::from(1000));
        assert_eq!(round(-1000, 4), BigInt::from(-992), "a tie goes upward");
        assert_eq!(round(-1001, 4), BigInt::from(-1008));
        assert_eq!(round(-1000, 5), BigInt::from(-992));
        assert_eq!(round(7, 4), BigInt::from(0));
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        assert!(matches!(encode(&float(1e300), 12), Err(EncodingError::OutOfRange(_))));
        assert!(matches!(encode(&float(1e70), 12), Err(EncodingError::OutOfRange(_))));
        let big = PyNumber::Int(BigInt::one() << 240u32);
        assert!(matches!(encode(&big, 0), Err(EncodingError::OutOfRange(_))));
        let fits = PyNumber::Int((BigInt::one() << 240u32) - 1);
        assert!(encode(&fits, 0).is_ok());
    }
}
