//! Matrix products between two data owners, party 0 with X and party 1 with Y: entries are
//! encoded in fixed point as exact integers and multiplied exactly over Z_2^256 ([`dense`]),
//! with the correlated randomness of a helper (party 2, or a federation member from outside the
//! computation) that never sees the inputs ([`matrix_product`]). No masks and no sums. What
//! every party learns in common: the product and the shapes; the helper the shapes, and the
//! product only when it is a party of the computation. The original's helper-less method
//! ([`projected_product`]) reveals more and runs only when both parties opt in.
//!
//! - [`dense`]: the matrices themselves (reading a party's matrix into fixed point, matrices over
//!   Z_2^256 and their wire form, pseudo-random matrices from a seed);
//! - [`matrix_product`]: the helper-assisted product, the building block;
//! - [`least_squares`]: a data owner's local (XᵀX)⁻¹Xᵀ;
//! - [`projected_product`]: the opt-in product without a helper, in floating point;
//! - [`secure_matrix_multiplication`]: the SecureMatrixMultiplication microprotocol;
//! - [`regression_ols_vertical`]: the StatisticsRegressionOLSVertical microprotocol, least
//!   squares as one product.

pub mod dense;
pub mod least_squares;
pub mod matrix_product;
pub mod projected_product;
pub mod regression_ols_vertical;
pub mod secure_matrix_multiplication;
