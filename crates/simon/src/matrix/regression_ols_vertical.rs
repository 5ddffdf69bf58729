//! StatisticsRegressionOLSVertical: least squares β = (XᵀX)⁻¹Xᵀy where party 0 holds the design
//! matrix X (n×p) and party 1 the response y (length n).
//!
//! Party 0 computes M = (XᵀX)⁻¹Xᵀ (p×n) locally from a QR factorisation ([`least_squares`]; a
//! rank-deficient X is an input error at party 0), then one [`SecureMatrixMultiplication`] of M and y (as an
//! n×1 matrix) gives β. M's entries are small (of order 1/n), so they are encoded with
//! `digits_after + 6` decimals and y's with `digits_after`: β is then exact up to M's own
//! floating-point error and half a unit in M's 18th decimal per term. Inputs: party 0 the
//! reference's `[X]` (or bare X); party 1 `[y]`, a bare vector, or an n×1 matrix. Output
//! `{"mle": [[β_0], …, [β_{p−1}]]}`, p×1 as the reference's.
//!
//! What each party learns: β and the shapes (n and p), nothing else; the helper the shapes. The
//! reference sent y in the clear to party 0 when n = p (REFERENCE.md §6 W3).

use crate::fixed_point::EncodingError;
use crate::matrix::dense::{self, Matrix};
use crate::matrix::least_squares;
use crate::matrix::matrix_product::Guards;
use crate::matrix::projected_product::ProjectedProduct;
use crate::matrix::secure_matrix_multiplication::{
    MatrixParameters, ResultKey, SecureMatrixMultiplication, owner_input,
};
use crate::protocol::{Limits, PartyIndex};
use serde_json::{Number, Value};

/// Extra decimals for the entries of (XᵀX)⁻¹Xᵀ.
pub const COEFFICIENT_EXTRA_DIGITS: u32 = 6;

/// Party 0's side: (XᵀX)⁻¹Xᵀ.
fn coefficients(input: &Value) -> Result<Matrix<f64>, EncodingError> {
    least_squares::pseudo_inverse(&dense::parse_matrix(input, dense::finite)?)
}

/// (XᵀX)⁻¹Xᵀ in fixed point.
fn encoded_coefficients(input: &Value, digits: u32) -> Result<Matrix<i128>, EncodingError> {
    let m = coefficients(input)?;
    let mut encoded = Matrix::zeros(m.rows(), m.cols());
    for i in 0..m.rows() {
        for (j, value) in m.row(i).iter().enumerate() {
            encoded.set(i, j, dense::encode_f64(*value, digits)?);
        }
    }
    Ok(encoded)
}

/// Party 1's side: y as an n×1 matrix, from `[y]`, `y`, or a one-column matrix, each entry read
/// by `entry`.
fn response<T>(input: &Value, entry: impl Fn(&Number) -> Result<T, EncodingError>) -> Result<Matrix<T>, EncodingError> {
    let is_vector = |items: &[Value]| !items.is_empty() && items.iter().all(Value::is_number);
    let vector = match input {
        Value::Array(items) => match items.as_slice() {
            [Value::Array(inner)] if is_vector(inner) => Some(inner),
            _ if is_vector(items) => Some(items),
            _ => None,
        },
        _ => None,
    };
    let column = match vector {
        Some(values) => Value::Array(values.iter().map(|v| Value::Array(vec![v.clone()])).collect()),
        None => input.clone(),
    };
    let y = dense::parse_matrix(&column, entry)?;
    if y.cols() != 1 {
        return Err(EncodingError::Invalid(format!(
            "the response y must be a vector (or a one-column matrix), got a {}×{} matrix",
            y.rows(),
            y.cols()
        )));
    }
    Ok(y)
}

/// Party `me`'s part of the regression: its input validated and encoded (party 0 computes its
/// coefficients here), as the one product the regression is.
pub fn regression(
    parameters: &MatrixParameters,
    me: PartyIndex,
    helper_is_party: bool,
    limits: Limits,
    input: &Value,
) -> Result<SecureMatrixMultiplication, EncodingError> {
    let digits = parameters.digits_after;
    let matrix = owner_input(me, input, |v| match me {
        0 => encoded_coefficients(v, digits + COEFFICIENT_EXTRA_DIGITS),
        _ => response(v, |n| dense::encode_number(n, digits)),
    })?;
    Ok(SecureMatrixMultiplication::of(
        me,
        matrix,
        ResultKey::Mle,
        (digits + COEFFICIENT_EXTRA_DIGITS, digits),
        Guards {
            helper_is_party,
            allow_revealing_shapes: parameters.allow_revealing_shapes,
            limits,
        },
    ))
}

/// Party `me`'s part (0 or 1) of the regression by the original's method without a helper
/// ([`ProjectedProduct`], for parties that opt in to what it reveals).
pub fn regression_revealing(me: PartyIndex, input: &Value) -> Result<ProjectedProduct, EncodingError> {
    let matrix = owner_input(me, input, |v| match me {
        0 => coefficients(v),
        _ => response(v, dense::finite),
    })?
    .expect("two parties, both data owners");
    Ok(ProjectedProduct::new(&matrix, ResultKey::Mle))
}
