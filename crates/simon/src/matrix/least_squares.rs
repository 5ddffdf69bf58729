//! Least squares in floating point, for the data owner of a vertical regression: the matrix
//! (XᵀX)⁻¹Xᵀ of a full-rank design X, from a Householder QR factorisation X = QR as R⁻¹Qᵀ. It
//! never forms XᵀX, which would square the condition number (the reference inverts XᵀX).

use crate::fixed_point::EncodingError;
use crate::matrix::dense::Matrix;

/// (XᵀX)⁻¹Xᵀ (p×n) of an n×p design; a rank-deficient X (fewer rows than columns, or a column
/// that is numerically a combination of the others) is an error that says so.
pub fn pseudo_inverse(x: &Matrix<f64>) -> Result<Matrix<f64>, EncodingError> {
    let (n, p) = x.shape();
    if n < p {
        return Err(EncodingError::Invalid(format!(
            "the design matrix X is rank-deficient: it has {n} rows and {p} columns, and least squares needs at least as many rows as columns"
        )));
    }
    let mut columns: Vec<Vec<f64>> = (0..p).map(|j| (0..n).map(|i| *x.get(i, j)).collect()).collect();
    let (reflectors, diagonal) = householder(&mut columns);
    let largest = diagonal.iter().fold(0.0f64, |m, d| m.max(d.abs()));
    let tolerance = largest * n.max(p) as f64 * f64::EPSILON;
    if let Some(k) = diagonal.iter().position(|d| d.abs() <= tolerance || !d.is_finite()) {
        return Err(EncodingError::Invalid(format!(
            "the design matrix X is rank-deficient: column {k} is (numerically) a linear combination of columns 0..{k}"
        )));
    }
    let q: Vec<Vec<f64>> = (0..p).map(|j| q_column(&reflectors, n, j)).collect();
    // Column i of R⁻¹Qᵀ solves R·m = (row i of Q), by back substitution.
    let mut out = Matrix::zeros(p, n);
    let mut m = vec![0.0; p];
    for i in 0..n {
        let q_row: Vec<f64> = q.iter().map(|column| column[i]).collect();
        for row in (0..p).rev() {
            let above: f64 = (row + 1..p).map(|j| columns[j][row] * m[j]).sum();
            m[row] = (q_row[row] - above) / diagonal[row];
        }
        for (row, value) in m.iter().enumerate() {
            out.set(row, i, *value);
        }
    }
    Ok(out)
}

/// Householder QR of the matrix whose columns (of equal length m) are `columns`: overwrites them
/// with R above the diagonal and returns the reflectors (v_k of H_k = I − 2·v_k·v_kᵀ/(v_kᵀv_k),
/// acting on rows k..m) and R's diagonal, for k below min(m, columns).
pub fn householder(columns: &mut [Vec<f64>]) -> (Vec<Vec<f64>>, Vec<f64>) {
    let rows = columns.first().map_or(0, Vec::len);
    let steps = rows.min(columns.len());
    let mut reflectors = Vec::with_capacity(steps);
    let mut diagonal = Vec::with_capacity(steps);
    for k in 0..steps {
        let mut v = columns[k][k..].to_vec();
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        let alpha = if v[0] >= 0.0 { -norm } else { norm };
        v[0] -= alpha;
        diagonal.push(alpha);
        for column in columns.iter_mut().skip(k + 1) {
            reflect(&v, &mut column[k..]);
        }
        reflectors.push(v);
    }
    (reflectors, diagonal)
}

/// Column `j` of the complete Q (m×m) of a Householder QR: H_0·…·H_{k−1}·e_j.
pub fn q_column(reflectors: &[Vec<f64>], rows: usize, j: usize) -> Vec<f64> {
    let mut e = vec![0.0; rows];
    e[j] = 1.0;
    for (k, v) in reflectors.iter().enumerate().rev() {
        reflect(v, &mut e[k..]);
    }
    e
}

/// Applies H = I − 2·v·vᵀ/(vᵀv) to `y` in place.
fn reflect(v: &[f64], y: &mut [f64]) {
    let vv: f64 = v.iter().map(|a| a * a).sum();
    if vv == 0.0 {
        return;
    }
    let factor = 2.0 * v.iter().zip(y.iter()).map(|(a, b)| a * b).sum::<f64>() / vv;
    y.iter_mut().zip(v).for_each(|(b, a)| *b -= factor * a);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_example_and_rank_deficiency() {
        let x = Matrix::from_vec(3, 3, vec![1.0, 2.0, 0.0, 2.0, 1.0, 1.0, 0.0, 4.0, 3.0]);
        let m = pseudo_inverse(&x).unwrap();
        let y = [17.0, 23.0, 45.0];
        let beta: Vec<f64> = (0..3).map(|r| (0..3).map(|i| m.get(r, i) * y[i]).sum()).collect();
        for (b, want) in beta.iter().zip([5.0, 6.0, 7.0]) {
            assert!((b - want).abs() < 1e-12, "{beta:?}");
        }
        let collinear = Matrix::from_vec(3, 2, vec![1.0, 2.0, 2.0, 4.0, 3.0, 6.0]);
        let error = pseudo_inverse(&collinear).unwrap_err().to_string();
        assert!(error.contains("rank-deficient: column 1"), "{error}");
        let wide = Matrix::from_vec(1, 2, vec![1.0, 2.0]);
        assert!(
            pseudo_inverse(&wide)
                .unwrap_err()
                .to_string()
                .contains("1 rows and 2 columns")
        );
    }
}
