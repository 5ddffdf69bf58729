//! ProjectedProduct: the original's two-party matrix product without a helper, for two parties
//! that opt in to what it reveals (parameter `reveal_inputs_without_helper`).
//!
//! Party 0 holds X (p×n), party 1 holds Y (n×q). They exchange shapes; party 0 takes
//! g = ⌊p·n/(p+q)⌋ columns Z of the orthogonal complement of X's row space (from a complete
//! Householder QR of Xᵀ) and sends party 1 V = I − Z·Zᵀ (n×n); party 1 sends back W = V·Y; party 0
//! computes X·W = X·Y (since X·Z = 0) and sends it to party 1. In floating point, as the original
//! (REFERENCE.md §4.5): results carry the rounding of the floating-point products.
//!
//! What it reveals, and why it is opt-in: party 1 learns V, hence the space orthogonal to Z, which
//! contains the row space of X. Party 0 learns W = V·Y: whenever p ≥ n (any square X, for
//! instance) Z is empty, V = I and W = Y, party 1's whole matrix; otherwise Y projected onto that
//! (n − g)-dimensional space. Both learn the product and the shapes. Messages: 5, four hops.

use crate::matrix::dense::Matrix;
use crate::matrix::least_squares;
use crate::matrix::matrix_product::incompatible;
use crate::matrix::secure_matrix_multiplication::{ResultKey, keyed};
use crate::protocol::{Io, Microprotocol, PartyIndex, Progress, ProtocolError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A float matrix as JSON: shape and row-major entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Floats {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Floats {
    fn of(matrix: &Matrix<f64>) -> Floats {
        Floats {
            rows: matrix.rows(),
            cols: matrix.cols(),
            data: (0..matrix.rows()).flat_map(|i| matrix.row(i).to_vec()).collect(),
        }
    }

    fn matrix(self, from: PartyIndex) -> Result<Matrix<f64>, ProtocolError> {
        if self.rows.checked_mul(self.cols) != Some(self.data.len()) {
            return Err(ProtocolError::Malformed {
                from,
                reason: format!("a {}×{} matrix with {} entries", self.rows, self.cols, self.data.len()),
            });
        }
        Ok(Matrix::from_vec(self.rows, self.cols, self.data))
    }
}

fn product(a: &Matrix<f64>, b: &Matrix<f64>) -> Matrix<f64> {
    let mut out = Matrix::zeros(a.rows(), b.cols());
    for i in 0..a.rows() {
        for (k, x) in a.row(i).iter().enumerate() {
            for (j, y) in b.row(k).iter().enumerate() {
                out.set(i, j, out.get(i, j) + x * y);
            }
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProjectedMessage {
    Shape(usize, usize),
    /// V = I − Z·Zᵀ, from party 0.
    Projector(Floats),
    /// W = V·Y, from party 1.
    Projected(Floats),
    Product(Floats),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectedProduct {
    key: ResultKey,
    /// Our matrix: X at party 0, Y at party 1.
    input: Floats,
}

impl ProjectedProduct {
    /// Party `me`'s part (0 or 1) with its matrix; the result goes under `key`.
    pub fn new(input: &Matrix<f64>, key: ResultKey) -> ProjectedProduct {
        ProjectedProduct {
            key,
            input: Floats::of(input),
        }
    }

    fn ours(&self) -> Matrix<f64> {
        self.input.clone().matrix(0).expect("our own matrix is well formed")
    }

    /// V = I − Z·Zᵀ for X (p×n) and a right-hand side with q columns.
    fn projector(x: &Matrix<f64>, q: usize) -> Matrix<f64> {
        let (p, n) = x.shape();
        let mut columns: Vec<Vec<f64>> = (0..p).map(|i| x.row(i).to_vec()).collect();
        let (reflectors, _) = least_squares::householder(&mut columns);
        let g = p * n / (p + q);
        let z: Vec<Vec<f64>> = (p..(p + g).min(n))
            .map(|j| least_squares::q_column(&reflectors, n, j))
            .collect();
        let mut v = Matrix::zeros(n, n);
        for i in 0..n {
            for j in 0..n {
                let zz: f64 = z.iter().map(|column| column[i] * column[j]).sum();
                v.set(i, j, f64::from(u8::from(i == j)) - zz);
            }
        }
        v
    }

    fn done(&self, product: &Matrix<f64>) -> Progress<Value> {
        Progress::Done(keyed(self.key, product.clone().into_rows()))
    }
}

impl Microprotocol for ProjectedProduct {
    type Message = ProjectedMessage;
    type Output = Value;

    fn start(&mut self, io: &mut Io<'_, ProjectedMessage>) -> Result<Progress<Value>, ProtocolError> {
        io.send(1 - io.me(), ProjectedMessage::Shape(self.input.rows, self.input.cols));
        Ok(Progress::Continue)
    }

    fn receive(
        &mut self,
        from: PartyIndex,
        message: ProjectedMessage,
        io: &mut Io<'_, ProjectedMessage>,
    ) -> Result<Progress<Value>, ProtocolError> {
        let ours = (self.input.rows, self.input.cols);
        match (io.me(), message) {
            (0, ProjectedMessage::Shape(n, q)) => {
                if n != ours.1 {
                    return Err(incompatible(ours, (n, q)));
                }
                let v = Self::projector(&self.ours(), q);
                io.send(1, ProjectedMessage::Projector(Floats::of(&v)));
                Ok(Progress::Continue)
            }
            (1, ProjectedMessage::Shape(p, n)) if n != ours.0 => Err(incompatible((p, n), ours)),
            (1, ProjectedMessage::Shape(..)) => Ok(Progress::Continue),
            (1, ProjectedMessage::Projector(v)) => {
                let v = v.matrix(from)?;
                if v.shape() != (ours.0, ours.0) {
                    return Err(incompatible((v.rows(), v.cols()), ours));
                }
                io.send(0, ProjectedMessage::Projected(Floats::of(&product(&v, &self.ours()))));
                Ok(Progress::Continue)
            }
            (0, ProjectedMessage::Projected(w)) => {
                let w = w.matrix(from)?;
                if w.rows() != ours.1 {
                    return Err(incompatible(ours, w.shape()));
                }
                let p = product(&self.ours(), &w);
                io.send(1, ProjectedMessage::Product(Floats::of(&p)));
                Ok(self.done(&p))
            }
            (1, ProjectedMessage::Product(p)) => Ok(self.done(&p.matrix(from)?)),
            (_, other) => Err(ProtocolError::Unexpected {
                from,
                what: match other {
                    ProjectedMessage::Shape(..) => "a shape",
                    ProjectedMessage::Projector(_) => "a projector",
                    ProjectedMessage::Projected(_) => "a projected matrix",
                    ProjectedMessage::Product(_) => "the product",
                }
                .to_string(),
            }),
        }
    }
}
