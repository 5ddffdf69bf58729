//! SecureMatrixMultiplication: party 0's matrix X (p×n) times party 1's matrix Y (n×q).
//!
//! Input: the reference's `data`, a one-element list holding the matrix (a bare matrix is accepted
//! too); with three or more parties the third is the helper and every input from index 2 on is
//! ignored, as the reference ignores it. Entries are encoded in fixed point with `digits_after`
//! decimals (default 12, see [`crate::matrix::dense`] for the exact rule), multiplied exactly in
//! Z_2^256 by [`MatrixProduct`], and the product is decoded once: for inputs with at most
//! `digits_after` decimals (and |x| < 4503 at 12 digits), every entry is the correctly rounded
//! double of the exact product. Output: `{"product": [[f64]]}` at every party except a helper
//! from outside the computation, which ends with the shapes only.
//!
//! Parameters: `digits_after` (0..=16) and, for two parties, `helper`: the federation member
//! that deals the randomness (the node fills in a default). What each party learns: the product
//! and the shapes; the helper the shapes (see [`MatrixProduct`]). The reference sent party 1's
//! matrix in the clear whenever X had at least as many rows as columns (REFERENCE.md §6 W3).

use crate::fixed_point::EncodingError;
use crate::matrix::dense::{self, MAX_INNER, Matrix, RingMatrix};
use crate::matrix::matrix_product::{Guards, MatrixProduct, ProductMessage, ProductOutput};
use crate::protocol::{Io, Limits, Microprotocol, PartyIndex, Progress, ProtocolError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The most decimals a matrix protocol takes (the regression adds 6 for its small coefficients).
pub const MAX_DIGITS_AFTER: u32 = 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixParameters {
    #[serde(default = "default_digits")]
    pub digits_after: u32,
    /// The federation member that deals correlated randomness when two parties compute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helper: Option<String>,
    /// Two parties without a helper opt in to the original's method, which reveals the row space
    /// of party 0's matrix to party 1 and party 1's matrix to party 0 when party 0's has at least
    /// as many rows as columns ([`crate::matrix::projected_product`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reveal_inputs_without_helper: bool,
    /// The parties accept shapes whose product hands an owner the other's matrix: X·Y gives Y to
    /// party 0 when X has at least as many rows as columns, and X to party 1 when Y has at
    /// least as many columns as rows. Without it, an owner refuses such shapes before it sends
    /// anything that would reveal the product (`revealing_shapes`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_revealing_shapes: bool,
}

fn default_digits() -> u32 {
    12
}

impl MatrixParameters {
    pub fn validate(self, parties: usize) -> Result<Self, String> {
        if self.digits_after > MAX_DIGITS_AFTER {
            return Err(format!(
                "digits_after must be at most {MAX_DIGITS_AFTER}, got {}",
                self.digits_after
            ));
        }
        if self.helper.is_some() && parties > 2 {
            return Err(
                "helper names a helper for two parties; with three or more, the third party is the helper".into(),
            );
        }
        if self.reveal_inputs_without_helper && (parties != 2 || self.helper.is_some()) {
            return Err("reveal_inputs_without_helper is for two parties without a helper".into());
        }
        Ok(self)
    }
}

/// A data owner's matrix from its input; `None` for the helper and the receivers.
pub fn owner_input<T>(
    me: PartyIndex,
    input: &Value,
    read: impl Fn(&Value) -> Result<Matrix<T>, EncodingError>,
) -> Result<Option<Matrix<T>>, EncodingError> {
    if me > 1 {
        return Ok(None);
    }
    let matrix = read(input)?;
    let inner = if me == 0 { matrix.cols() } else { matrix.rows() };
    if inner > MAX_INNER {
        return Err(EncodingError::Invalid(format!(
            "the inner dimension may be at most {MAX_INNER}, got {inner}"
        )));
    }
    Ok(Some(matrix))
}

/// Under which key the result carries the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResultKey {
    /// `{"product": …}`, SecureMatrixMultiplication's.
    Product,
    /// `{"mle": …}`, StatisticsRegressionOLSVertical's.
    Mle,
}

/// The reference's result: the product's rows under `key`.
pub fn keyed(key: ResultKey, rows: Vec<Vec<f64>>) -> Value {
    match key {
        ResultKey::Product => json!({ "product": rows }),
        ResultKey::Mle => json!({ "mle": rows }),
    }
}

/// A data owner's matrix of finite doubles (the original's method without a helper).
pub fn float_input(me: PartyIndex, input: &Value) -> Result<Option<Matrix<f64>>, EncodingError> {
    owner_input(me, input, |v| dense::parse_matrix(v, dense::finite))
}

/// A product of fixed-point matrices, decoded into the reference's result. Also the body of
/// StatisticsRegressionOLSVertical, which is one such product.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecureMatrixMultiplication {
    key: ResultKey,
    /// The decimals of the product: the sum of both factors' decimals.
    digits: u32,
    product: MatrixProduct,
}

impl SecureMatrixMultiplication {
    /// Validates and encodes party `me`'s input; nothing is sent yet.
    pub fn new(
        parameters: &MatrixParameters,
        me: PartyIndex,
        helper_is_party: bool,
        limits: Limits,
        input: &Value,
    ) -> Result<SecureMatrixMultiplication, EncodingError> {
        let digits = parameters.digits_after;
        let matrix = owner_input(me, input, |v| {
            dense::parse_matrix(v, |n| dense::encode_number(n, digits))
        })?;
        Ok(SecureMatrixMultiplication::of(
            me,
            matrix,
            ResultKey::Product,
            (digits, digits),
            Guards {
                helper_is_party,
                allow_revealing_shapes: parameters.allow_revealing_shapes,
                limits,
            },
        ))
    }

    /// Party `me`'s part of a product of already encoded matrices (`None` unless `me` is 0 or 1)
    /// with `decimals` (party 0's, party 1's). The product is opened on the grid of 2^d units
    /// of its last decimal, d the fewer of the two decimals (`digits_after`): every product with
    /// at most d decimals lies on it and stays exact (and deterministic), any other is rounded
    /// to a neighbour on it, and the owners learn no digit below the grid ([`MatrixProduct`]).
    pub fn of(
        me: PartyIndex,
        matrix: Option<Matrix<i128>>,
        key: ResultKey,
        decimals: (u32, u32),
        guards: Guards,
    ) -> SecureMatrixMultiplication {
        let grid = decimals.0.min(decimals.1);
        SecureMatrixMultiplication {
            key,
            digits: decimals.0 + decimals.1,
            product: MatrixProduct::new(me, matrix.as_ref().map(RingMatrix::from_integers), guards, grid),
        }
    }

    fn finish(&self, progress: Progress<ProductOutput>) -> Progress<Value> {
        let Progress::Done(output) = progress else {
            return Progress::Continue;
        };
        Progress::Done(match output {
            ProductOutput::Product(product) => keyed(self.key, product.decode(self.digits).into_rows()),
            ProductOutput::Helped { left, right } => {
                json!({"helper": {"shapes": [[left.0, left.1], [right.0, right.1]]}})
            }
        })
    }
}
impl Microprotocol for SecureMatrixMultiplication {
    type Message = ProductMessage;
    type Output = Value;

    fn start(&mut self, io: &mut Io<'_, ProductMessage>) -> Result<Progress<Value>, ProtocolError> {
        let progress = self.product.start(io)?;
        Ok(self.finish(progress))
    }

    fn receive(
        &mut self,
        from: PartyIndex,
        message: ProductMessage,
        io: &mut Io<'_, ProductMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        let progress = self.product.receive(from, message, io)?;
        Ok(self.finish(progress))
    }
}
