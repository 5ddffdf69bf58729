//! Matrices for the product protocols: reading a party's matrix from the reference's input shapes
//! into exact fixed-point integers, matrices over Z_2^256 with their compact wire form, products,
//! and pseudo-random matrices expanded from a seed. No protocol logic lives here.
//!
//! Fixed point for matrices: an entry x becomes the integer nearest to x·10^digits, computed
//! exactly from the double (not the reference's truncated f64 product, which turns 0.3 into
//! 0.299999999999): every number with at most `digits` decimals and |x| < 2^52/10^digits (4503
//! at 12 digits) is encoded exactly, any other within half a unit of the last place. Encoded
//! entries are bounded by 2^116 and inner dimensions by 2^20, so an exact product entry stays
//! below 2^252 and never wraps in the ring; it is decoded once, correctly rounded.

use crate::fixed_point::{self, EncodingError};
use crate::order::doubles::kind;
use crate::z2k::Z256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use num_bigint::BigInt;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Number, Value};

/// Encoded entries must lie strictly within ±2^116 (about ±8.3e34, i.e. |x| < 8.3e22 at 12 digits).
pub const ENTRY_LIMIT_BITS: u32 = 116;
/// The longest inner dimension (columns of the first matrix): with entries below 2^116, a sum of
/// 2^20 products stays below 2^252.
pub const MAX_INNER: usize = 1 << 20;
/// The most decimals a matrix protocol encodes: m·10^digits of a 53-bit mantissa m fits in 127 bits.
pub const MAX_DIGITS: u32 = 22;

/// A dense row-major matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix<T> {
    rows: usize,
    cols: usize,
    data: Vec<T>,
}

impl<T: Copy + Default> Matrix<T> {
    pub fn zeros(rows: usize, cols: usize) -> Matrix<T> {
        Matrix {
            rows,
            cols,
            data: vec![T::default(); rows * cols],
        }
    }
}

impl<T> Matrix<T> {
    /// `data` in row-major order; panics if its length is not `rows * cols`.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<T>) -> Matrix<T> {
        assert_eq!(data.len(), rows * cols, "matrix data has the wrong length");
        Matrix { rows, cols, data }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    pub fn row(&self, i: usize) -> &[T] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    fn row_mut(&mut self, i: usize) -> &mut [T] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    pub fn get(&self, i: usize, j: usize) -> &T {
        &self.data[i * self.cols + j]
    }

    pub fn set(&mut self, i: usize, j: usize, value: T) {
        self.data[i * self.cols + j] = value;
    }

    pub fn map<U>(&self, f: impl Fn(&T) -> U) -> Matrix<U> {
        Matrix {
            rows: self.rows,
            cols: self.cols,
            data: self.data.iter().map(f).collect(),
        }
    }

    pub fn into_rows(self) -> Vec<Vec<T>> {
        let cols = self.cols.max(1);
        let mut data = self.data.into_iter();
        (0..self.rows).map(|_| data.by_ref().take(cols).collect()).collect()
    }
}

/// A matrix over Z_2^256.
pub type RingMatrix = Matrix<Z256>;

impl RingMatrix {
    /// A uniformly random matrix expanded from `seed` (ChaCha20, row-major): whoever holds the
    /// seed can regenerate it, so a seed of 32 bytes stands in for the whole matrix.
    pub fn from_seed(seed: [u8; 32], rows: usize, cols: usize) -> RingMatrix {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let data = (0..rows * cols).map(|_| Z256::random(&mut rng)).collect();
        Matrix { rows, cols, data }
    }

    /// `self − M` in place, where M is [`RingMatrix::from_seed`]`(seed, …)` of our shape,
    /// generated on the fly: a masked matrix without a second matrix in memory.
    pub fn minus_seeded(mut self, seed: [u8; 32]) -> RingMatrix {
        let mut rng = ChaCha20Rng::from_seed(seed);
        self.data.iter_mut().for_each(|v| *v -= Z256::random(&mut rng));
        self
    }

    /// `M · rhs` where M (`rows`×`rhs.rows()`) is [`RingMatrix::from_seed`]`(seed, …)`, generated
    /// row by row instead of held whole.
    pub fn seeded_product(seed: [u8; 32], rows: usize, rhs: &RingMatrix) -> RingMatrix {
        let mut rng = ChaCha20Rng::from_seed(seed);
        let mut out = RingMatrix::zeros(rows, rhs.cols);
        let mut row = vec![Z256::ZERO; rhs.rows];
        for i in 0..rows {
            row.iter_mut().for_each(|v| *v = Z256::random(&mut rng));
            add_row_product(out.row_mut(i), &row, rhs);
        }
        out
    }

    pub fn from_integers(matrix: &Matrix<i128>) -> RingMatrix {
        matrix.map(|&v| Z256::from_i128(v))
    }

    /// The product modulo 2^256; panics on incompatible shapes (callers check them first).
    pub fn product(&self, rhs: &RingMatrix) -> RingMatrix {
        assert_eq!(self.cols, rhs.rows, "incompatible shapes");
        let mut out = RingMatrix::zeros(self.rows, rhs.cols);
        for i in 0..self.rows {
            add_row_product(out.row_mut(i), self.row(i), rhs);
        }
        out
    }

    /// Element-wise sum; panics on different shapes.
    pub fn plus(&self, rhs: &RingMatrix) -> RingMatrix {
        assert_eq!(self.shape(), rhs.shape(), "different shapes");
        let data = self.data.iter().zip(&rhs.data).map(|(&a, &b)| a + b).collect();
        Matrix { data, ..*self }
    }

    /// Every entry as the signed integer it represents, divided by 10^digits and correctly
    /// rounded to a double.
    pub fn decode(&self, digits: u32) -> Matrix<f64> {
        let scale = BigInt::from(10u32).pow(digits);
        self.map(|v| fixed_point::ratio_to_f64(&v.to_signed_bigint(), &scale))
    }
}

/// `acc += row · rhs`: one row of a product.
fn add_row_product(acc: &mut [Z256], row: &[Z256], rhs: &RingMatrix) {
    for (k, &a) in row.iter().enumerate() {
        for (o, &b) in acc.iter_mut().zip(rhs.row(k)) {
            *o += a * b;
        }
    }
}

/// On the wire and in stored state: the shape and one base64 string of the entries' 32-byte
/// little-endian forms (a megabyte matrix costs 1.33 MB, not a JSON array of 64-digit strings).
#[derive(Serialize, Deserialize)]
struct RingMatrixWire<'a> {
    rows: usize,
    cols: usize,
    #[serde(borrow)]
    data: std::borrow::Cow<'a, str>,
}

impl Serialize for RingMatrix {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Three entries (96 bytes) at a time, a whole number of base64 quanta: no padding but
        // at the end, and no copy of the whole matrix as bytes.
        let mut text = String::with_capacity((self.data.len() * 32).div_ceil(3) * 4);
        for block in self.data.chunks(3) {
            let mut bytes = [0u8; 96];
            for (dst, value) in bytes.chunks_exact_mut(32).zip(block) {
                value.write_le_bytes(dst);
            }
            BASE64.encode_string(&bytes[..block.len() * 32], &mut text);
        }
        RingMatrixWire {
            rows: self.rows,
            cols: self.cols,
            data: text.into(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RingMatrix {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RingMatrix, D::Error> {
        use serde::de::Error;
        let wire = RingMatrixWire::deserialize(deserializer)?;
        let bytes = BASE64.decode(wire.data.as_bytes()).map_err(D::Error::custom)?;
        let len = wire
            .rows
            .checked_mul(wire.cols)
            .filter(|&n| n.checked_mul(32) == Some(bytes.len()));
        if len.is_none() {
            return Err(D::Error::custom(format!(
                "a {}×{} matrix needs {} bytes",
                wire.rows,
                wire.cols,
                wire.rows.saturating_mul(wire.cols).saturating_mul(32)
            )));
        }
        let data = bytes.chunks_exact(32).map(Z256::from_le_bytes).collect();
        Ok(Matrix {
            rows: wire.rows,
            cols: wire.cols,
            data,
        })
    }
}

/// The integer nearest to `x·10^digits` (ties to even), exactly, within ±2^116.
pub fn encode_f64(x: f64, digits: u32) -> Result<i128, EncodingError> {
    assert!(digits <= MAX_DIGITS, "at most {MAX_DIGITS} digits");
    if !x.is_finite() {
        return Err(EncodingError::OutOfRange(format!("{x}")));
    }
    if x == 0.0 {
        return Ok(0);
    }
    let bits = x.abs().to_bits();
    let (exponent, mantissa) = match (bits >> 52) as i32 {
        0 => (-1074, bits & ((1 << 52) - 1)),
        biased => (biased - 1075, (bits & ((1 << 52) - 1)) | (1 << 52)),
    };
    // |x|·10^d = mantissa·10^d·2^exponent, and mantissa·10^d < 2^53·2^74 fits in a u128.
    let scaled = mantissa as u128 * 10u128.pow(digits);
    let magnitude = if exponent >= 0 {
        (exponent < 128)
            .then(|| scaled.checked_shl(exponent as u32).filter(|v| v >> exponent == scaled))
            .flatten()
            .ok_or_else(|| EncodingError::OutOfRange(format!("{x:e}")))?
    } else if -exponent >= 128 {
        0
    } else {
        let shift = (-exponent) as u32;
        let quotient = scaled >> shift;
        let remainder = scaled & ((1u128 << shift) - 1);
        let half = 1u128 << (shift - 1);
        quotient + u128::from(remainder > half || (remainder == half && quotient & 1 == 1))
    };
    within_limit(magnitude, x.is_sign_negative(), || format!("{x:e}"))
}

fn within_limit(magnitude: u128, negative: bool, shown: impl Fn() -> String) -> Result<i128, EncodingError> {
    if magnitude >> ENTRY_LIMIT_BITS != 0 {
        return Err(EncodingError::Invalid(format!(
            "entry {} is too large: |x|·10^digits_after must stay below 2^{ENTRY_LIMIT_BITS} (about 8.3e34)",
            shown()
        )));
    }
    let value = magnitude as i128;
    Ok(if negative { -value } else { value })
}

/// A JSON number as fixed point: integers exactly, doubles as [`encode_f64`].
pub fn encode_number(number: &Number, digits: u32) -> Result<i128, EncodingError> {
    let text = number.as_str();
    if !text.contains(['.', 'e', 'E']) {
        let magnitude = text
            .trim_start_matches('-')
            .parse::<u128>()
            .ok()
            .and_then(|v| v.checked_mul(10u128.pow(digits)))
            .unwrap_or(u128::MAX);
        return within_limit(magnitude, text.starts_with('-'), || text.to_string());
    }
    let value: f64 = text.parse().map_err(|_| EncodingError::OutOfRange(text.to_string()))?;
    encode_f64(value, digits)
}

/// A JSON number as a finite double.
pub fn finite(number: &Number) -> Result<f64, EncodingError> {
    number
        .as_f64()
        .filter(|v| v.is_finite())
        .ok_or_else(|| EncodingError::OutOfRange(number.to_string()))
}

/// A party's matrix, as the reference takes it: a one-element list holding the matrix (what
/// `compute(data=[M])` sends), or the bare matrix, a non-empty list of equally long, non-empty
/// rows of numbers. `entry` converts each number.
pub fn parse_matrix<T>(
    input: &Value,
    entry: impl Fn(&Number) -> Result<T, EncodingError>,
) -> Result<Matrix<T>, EncodingError> {
    let bad = |what: String| EncodingError::Invalid(what);
    let rows = match input {
        Value::Array(items) => match items.as_slice() {
            [Value::Array(inner)] if matches!(inner.first(), Some(Value::Array(_))) => inner,
            _ => items,
        },
        other => return Err(bad(format!("expected a list of rows, got {}", kind(other)))),
    };
    if rows.is_empty() {
        return Err(bad("the matrix has no rows".into()));
    }
    let mut cols = None;
    let mut data = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let Value::Array(row) = row else {
            return Err(bad(format!(
                "row {i} is {}, not a list of numbers (a matrix is a list of rows)",
                kind(row)
            )));
        };
        match cols {
            None if row.is_empty() => return Err(bad("row 0 is empty".into())),
            None => cols = Some(row.len()),
            Some(n) if n != row.len() => {
                return Err(bad(format!(
                    "ragged rows: row {i} has {} entries, row 0 has {n}",
                    row.len()
                )));
            }
            Some(_) => {}
        }
        for (j, value) in row.iter().enumerate() {
            let Value::Number(number) = value else {
                return Err(bad(format!("entry [{i}][{j}] is {}, not a number", kind(value))));
            };
            data.push(entry(number).map_err(|e| bad(format!("entry [{i}][{j}]: {e}")))?);
        }
    }
    Ok(Matrix::from_vec(rows.len(), cols.unwrap_or(0), data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimals_are_encoded_exactly_and_ints_stay_exact() {
        assert_eq!(encode_f64(0.3, 12).unwrap(), 300_000_000_000);
        assert_eq!(encode_f64(-1.25, 12).unwrap(), -1_250_000_000_000);
        assert_eq!(encode_f64(123.456789012345, 12).unwrap(), 123_456_789_012_345);
        assert_eq!(encode_f64(5e-324, 12).unwrap(), 0);
        assert_eq!(encode_f64(1e22, 12).unwrap(), 10i128.pow(34));
        let n = |text: &str| serde_json::from_str::<Number>(text).unwrap();
        assert_eq!(encode_number(&n("-7"), 12).unwrap(), -7_000_000_000_000);
        assert_eq!(encode_number(&n("0.1"), 12).unwrap(), 100_000_000_000);
        assert!(matches!(encode_number(&n("1e23"), 12), Err(EncodingError::Invalid(_))));
        assert!(matches!(
            encode_number(&n("1e400"), 12),
            Err(EncodingError::OutOfRange(_))
        ));
        assert!(matches!(
            encode_number(&n("100000000000000000000000000000"), 12),
            Err(EncodingError::Invalid(_))
        ));
    }

    #[test]
    fn wrapped_and_bare_matrices_parse_and_bad_ones_are_named() {
        let parse = |v: Value| parse_matrix(&v, |n| encode_number(n, 0));
        let wrapped = parse(json!([[[1, 2, 3]]])).unwrap();
        assert_eq!((wrapped.shape(), wrapped.row(0).to_vec()), ((1, 3), vec![1, 2, 3]));
        assert_eq!(parse(json!([[1, 2], [3, 4]])).unwrap().shape(), (2, 2));
        assert_eq!(parse(json!([[4], [5], [6]])).unwrap().shape(), (3, 1));
        for (input, says) in [
            (json!([[1, 2], [3]]), "ragged rows: row 1 has 1 entries, row 0 has 2"),
            (json!([]), "no rows"),
            (json!([[]]), "row 0 is empty"),
            (json!([1, 2]), "row 0 is a number"),
            (json!([[1, "x"]]), "entry [0][1] is a string"),
            (json!(5), "expected a list of rows"),
        ] {
            let error = parse(input.clone()).unwrap_err().to_string();
            assert!(error.contains(says), "{input}: {error}");
        }
    }

    #[test]
    fn ring_matrices_travel_as_base64_and_check_their_length() {
        let m = RingMatrix::from_seed([7; 32], 2, 3);
        let text = serde_json::to_string(&m).unwrap();
        assert!(text.starts_with(r#"{"rows":2,"cols":3,"data":""#), "{text}");
        assert_eq!(serde_json::from_str::<RingMatrix>(&text).unwrap(), m);
        let short = text.replace(r#""cols":3"#, r#""cols":4"#);
        assert!(serde_json::from_str::<RingMatrix>(&short).is_err());
    }

    #[test]
    fn products_are_exact_in_the_ring() {
        let a = RingMatrix::from_integers(&Matrix::from_vec(2, 2, vec![1, -2, 3, 4]));
        let b = RingMatrix::from_integers(&Matrix::from_vec(2, 1, vec![5, 6]));
        let p = a.product(&b).decode(0);
        assert_eq!(p.into_rows(), vec![vec![-7.0], vec![39.0]]);
    }
}
