//! SecureMatrixMultiplication and StatisticsRegressionOLSVertical against exact products and
//! plaintext least squares, the reference's vectors, and what each party receives (uniform
//! matrices for the data owners, nothing input-dependent for the helper). Pure: no I/O but
//! reading the vector files.

use fsc_simon::matrix::matrix_product::{HELPER, ProductMessage};
use fsc_simon::simulate::{run_all, run_recorded};
use fsc_simon::z2k::Z256;
use fsc_simon::{EngineError, Spec};
use num_bigint::BigInt;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::{Value, json};
use std::path::PathBuf;

fn load(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../vectors/{name}.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// Two parties and a helper from outside, whose input is null; they accept any shapes (the
/// original's semantics: `revealing_shapes_are_refused_unless_allowed` tests the guard).
fn two_with_helper(microprotocol: &str) -> Spec {
    Spec::new(
        microprotocol,
        &json!({"helper": "carol", "allow_revealing_shapes": true}),
        2,
    )
    .unwrap()
}

fn inputs_with_helper(x: Value, y: Value) -> Vec<Value> {
    vec![x, y, Value::Null]
}

fn matrix_of(output: &Value, key: &str) -> Vec<Vec<f64>> {
    serde_json::from_value(output["result"][key].clone()).unwrap_or_else(|e| panic!("{output}: {e}"))
}

/// A random decimal with up to `decimals` digits after the point, as (text, exact value·10^12).
fn random_decimal(rng: &mut dyn RngCore, decimals: u32) -> (String, BigInt) {
    let units = (rng.next_u64() % 10u64.pow(decimals + 3)) as i64 - 10i64.pow(decimals + 3) / 2;
    let scaled = BigInt::from(units) * BigInt::from(10u64).pow(12 - decimals);
    let text = if decimals == 0 {
        format!("{units}")
    } else {
        let sign = if units < 0 { "-" } else { "" };
        let magnitude = units.unsigned_abs();
        let divisor = 10u64.pow(decimals);
        format!(
            "{sign}{}.{:0width$}",
            magnitude / divisor,
            magnitude % divisor,
            width = decimals as usize
        )
    };
    (text, scaled)
}

fn random_matrix(rng: &mut dyn RngCore, rows: usize, cols: usize, decimals: u32) -> (Value, Vec<Vec<BigInt>>) {
    let mut texts = Vec::new();
    let mut exact = Vec::new();
    for _ in 0..rows {
        let (row_text, row_exact): (Vec<String>, Vec<BigInt>) =
            (0..cols).map(|_| random_decimal(rng, decimals)).unzip();
        texts.push(format!("[{}]", row_text.join(",")));
        exact.push(row_exact);
    }
    let value = serde_json::from_str(&format!("[[{}]]", texts.join(","))).unwrap();
    (value, exact)
}

#[test]
fn random_shapes_match_the_exact_product() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let spec = two_with_helper("SecureMatrixMultiplication");
    let ten24 = BigInt::from(10u64).pow(24);
    let mut shapes = vec![(1, 1, 1), (1, 7, 1), (7, 1, 7), (50, 50, 50), (1, 50, 1), (50, 1, 1)];
    for _ in 0..30 {
        let mut dim = || (rng.next_u64() % 50 + 1) as usize;
        shapes.push((dim(), dim(), dim()));
    }
    for (case, (p, n, q)) in shapes.into_iter().enumerate() {
        let decimals = (case % 13) as u32;
        let (x, xe) = random_matrix(&mut rng, p, n, decimals);
        let (y, ye) = random_matrix(&mut rng, n, q, 12 - decimals);
        let outputs = run_all(&spec, &inputs_with_helper(x, y), &mut rng).unwrap();
        for (i, x_row) in xe.iter().enumerate() {
            for j in 0..q {
                let exact: BigInt = x_row.iter().zip(&ye).map(|(a, y_row)| a * &y_row[j]).sum();
                let want = fsc_simon::fixed_point::ratio_to_f64(&exact, &ten24);
                for party in [0, 1] {
                    let got = matrix_of(&outputs[party], "product")[i][j];
                    assert_eq!(got, want, "{p}×{n}·{n}×{q} entry ({i},{j}) at party {party}");
                }
            }
        }
        assert_eq!(outputs[0]["inputs"], json!(2));
        assert_eq!(
            outputs[HELPER],
            json!({"inputs": 2, "result": {"helper": {"shapes": [[p, n], [n, q]]}}})
        );
    }
}

#[test]
fn the_reference_vectors_pass() {
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    for name in [
        "secure_matrix_multiplication_2p_test",
        "secure_matrix_multiplication_2p_float",
        "secure_matrix_multiplication_2p_vector",
        "secure_matrix_multiplication_3p",
        "large_secure_matrix_multiplication_2p_50x50",
        "statistics_regression_ols_vertical_2p_test",
    ] {
        let vector = load(name);
        let microprotocol = vector["microprotocol"].as_str().unwrap();
        let mut inputs: Vec<Value> = serde_json::from_value(vector["inputs"].clone()).unwrap();
        let spec = if inputs.len() == 2 {
            inputs.push(Value::Null);
            two_with_helper(microprotocol)
        } else {
            Spec::new(microprotocol, &json!({"allow_revealing_shapes": true}), inputs.len()).unwrap()
        };
        let outputs = run_all(&spec, &inputs, &mut rng).unwrap();
        let key = if microprotocol == "SecureMatrixMultiplication" {
            "product"
        } else {
            "mle"
        };
        let want = matrix_of(&vector["result"], key);
        let receivers = if vector["parties"] == json!(3) { 3 } else { 2 };
        for output in &outputs[..receivers] {
            let got = matrix_of(output, key);
            assert_eq!(got.len(), want.len(), "{name}");
            for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
                assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{name}: {got:?} vs {want:?}");
            }
        }
    }
}

#[test]
fn bad_inputs_are_named_and_incompatible_shapes_fail_everyone() {
    let spec = two_with_helper("SecureMatrixMultiplication");
    for (input, says) in [
        (json!([[1, 2], [3]]), "ragged rows"),
        (json!([[[1, "2"]]]), "entry [0][1] is a string"),
        (json!([[1e300]]), "out of range"),
        (json!(3), "expected a list of rows"),
    ] {
        let error = spec.machine(0, &input).unwrap_err();
        assert_eq!(error.code(), "invalid_input");
        assert!(error.to_string().contains(says), "{error}");
    }
    // The helper and the receivers ignore their input, as the reference ignores a third matrix.
    assert!(spec.machine(2, &json!("anything")).is_ok());
    let vector = load("secure_matrix_multiplication_2p_incompatible");
    let inputs: Vec<Value> = serde_json::from_value(vector["inputs"].clone()).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let error = run_all(
        &spec,
        &inputs_with_helper(inputs[0].clone(), inputs[1].clone()),
        &mut rng,
    )
    .unwrap_err();
    assert_eq!(error.code(), "no_result");
    assert!(
        error
            .to_string()
            .contains("matrix shapes not compatible: party 0's matrix is 2×3, party 1's is 2×2")
    );
    let unhelped = Spec::new("SecureMatrixMultiplication", &json!({}), 2).unwrap();
    assert!(matches!(
        unhelped.machine(0, &json!([[1]])),
        Err(EngineError::NoHelper { .. })
    ));
    let three = Spec::new("SecureMatrixMultiplication", &json!({"helper": "carol"}), 3);
    assert!(matches!(three, Err(EngineError::InvalidParameters { .. })));
}

/// X (3×2) and Y (2×2): X·Y hands Y to party 0 (X has full column rank) and X to party 1 (Y has
/// full row rank): each owner refuses before it sends its share, unless the parties allow it.
#[test]
fn revealing_shapes_are_refused_unless_allowed() {
    let x = json!([[1, 2], [3, 4], [5, 6]]);
    let y = json!([[1, 0], [0, 1]]);
    let mut rng = ChaCha20Rng::seed_from_u64(15);
    for (microprotocol, left, right, refusing) in [
        ("SecureMatrixMultiplication", x.clone(), y, &[0, 1][..]),
        // OLS with n = p hands y to party 0 (β = X⁻¹y); β (p numbers) does not give M (p×n).
        (
            "StatisticsRegressionOLSVertical",
            json!([[1, 2], [3, 5]]),
            json!([1, 2]),
            &[1][..],
        ),
    ] {
        let guarded = Spec::new(microprotocol, &json!({"helper": "carol"}), 2).unwrap();
        for owner in [0, 1] {
            let mut machine = guarded.machine(owner, if owner == 0 { &left } else { &right }).unwrap();
            let mut other = guarded
                .machine(1 - owner, if owner == 0 { &right } else { &left })
                .unwrap();
            let masks = fsc_simon::Masks::dealt(3, &mut rng);
            machine.start(&mut rng, &masks[owner]).unwrap();
            let theirs = other.start(&mut rng, &masks[1 - owner]).unwrap();
            let (_, masked) = theirs.outgoing.into_iter().find(|(to, _)| *to == owner).unwrap();
            let step = machine.receive(1 - owner, &masked, &mut rng, &masks[owner]);
            match step {
                Err(error) => {
                    assert!(refusing.contains(&owner), "{microprotocol}: party {owner} refused");
                    assert_eq!(
                        error.code(),
                        "revealing_shapes",
                        "{microprotocol} party {owner}: {error}"
                    );
                }
                Ok(_) => assert!(
                    !refusing.contains(&owner),
                    "{microprotocol}: party {owner} sent its share"
                ),
            }
        }
        let allowed = Spec::new(
            microprotocol,
            &json!({"helper": "carol", "allow_revealing_shapes": true}),
            2,
        )
        .unwrap();
        assert!(
            run_all(&allowed, &inputs_with_helper(left, right), &mut rng).is_ok(),
            "{microprotocol}"
        );
    }
    // A wide X (2×3) and a tall Y (3×2) reveal neither: computed without the opt-in.
    let safe = Spec::new("SecureMatrixMultiplication", &json!({"helper": "carol"}), 2).unwrap();
    let outputs = run_all(
        &safe,
        &inputs_with_helper(json!([[1, 0, 0], [0, 1, 0]]), json!([[1, 2], [3, 4], [5, 6]])),
        &mut rng,
    )
    .unwrap();
    assert_eq!(outputs[0]["result"], json!({"product": [[1.0, 2.0], [3.0, 4.0]]}));
}

#[test]
fn unwrapped_matrices_multiply() {
    let vector = load("secure_matrix_multiplication_2p_unwrapped");
    let inputs: Vec<Value> = serde_json::from_value(vector["inputs"].clone()).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(14);
    let spec = two_with_helper("SecureMatrixMultiplication");
    let outputs = run_all(
        &spec,
        &inputs_with_helper(inputs[0].clone(), inputs[1].clone()),
        &mut rng,
    )
    .unwrap();
    assert_eq!(outputs[1]["result"], json!({"product": [[19.0, 22.0], [43.0, 50.0]]}));
}

/// Solves the normal equations of integer data exactly formed (XᵀX, Xᵀy in i128), in f64 with
/// partial pivoting: accurate for well-conditioned designs, and independent of the engine's QR.
fn normal_equations(x: &[Vec<i64>], y: &[i64]) -> Vec<f64> {
    let p = x[0].len();
    let mut a: Vec<Vec<f64>> = (0..p)
        .map(|r| {
            let mut row: Vec<f64> = (0..p)
                .map(|c| x.iter().map(|xi| xi[r] as i128 * xi[c] as i128).sum::<i128>() as f64)
                .collect();
            row.push(
                x.iter()
                    .zip(y)
                    .map(|(xi, yi)| xi[r] as i128 * *yi as i128)
                    .sum::<i128>() as f64,
            );
            row
        })
        .collect();
    for k in 0..p {
        let pivot = (k..p).max_by(|&i, &j| a[i][k].abs().total_cmp(&a[j][k].abs())).unwrap();
        a.swap(k, pivot);
        let (upper, lower) = a.split_at_mut(k + 1);
        let pivot_row = &upper[k];
        for row in lower {
            let f = row[k] / pivot_row[k];
            row.iter_mut().zip(pivot_row).skip(k).for_each(|(r, p)| *r -= f * p);
        }
    }
    let mut beta = vec![0.0; p];
    for k in (0..p).rev() {
        beta[k] = (a[k][p] - (k + 1..p).map(|c| a[k][c] * beta[c]).sum::<f64>()) / a[k][k];
    }
    beta
}

fn regress(x: &[Vec<i64>], y: &[i64], rng: &mut dyn RngCore) -> Vec<f64> {
    let spec = two_with_helper("StatisticsRegressionOLSVertical");
    let outputs = run_all(&spec, &inputs_with_helper(json!([x]), json!([y])), rng).unwrap();
    assert_eq!(outputs[0], outputs[1]);
    matrix_of(&outputs[0], "mle").into_iter().flatten().collect()
}

#[test]
fn regression_matches_plaintext_least_squares() {
    let mut rng = ChaCha20Rng::seed_from_u64(15);
    let small = |rng: &mut ChaCha20Rng, bound: u64| (rng.next_u64() % (2 * bound + 1)) as i64 - bound as i64;
    // Well conditioned, with noise: against the normal equations.
    for (n, p) in [(3, 3), (20, 2), (200, 5), (1000, 10)] {
        let x: Vec<Vec<i64>> = (0..n).map(|_| (0..p).map(|_| small(&mut rng, 100)).collect()).collect();
        let y: Vec<i64> = (0..n).map(|_| small(&mut rng, 10_000)).collect();
        let (got, want) = (regress(&x, &y, &mut rng), normal_equations(&x, &y));
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0), "{n}×{p}: {got:?} vs {want:?}");
        }
    }
    // Ill conditioned (condition number about 1e6), y = Xβ exactly: β comes back.
    let n = 400;
    let x: Vec<Vec<i64>> = (0..n)
        .map(|_| {
            let a = small(&mut rng, 1_000_000);
            vec![1, a, a + small(&mut rng, 1)]
        })
        .collect();
    let beta = [3i64, -2, 5];
    let y: Vec<i64> = x.iter().map(|r| r.iter().zip(beta).map(|(a, b)| a * b).sum()).collect();
    let got = regress(&x, &y, &mut rng);
    for (g, b) in got.iter().zip(beta) {
        assert!((g - b as f64).abs() < 1e-6, "{got:?}");
    }
    // Rank deficient: a clear error at party 0, before anything is sent.
    let spec = two_with_helper("StatisticsRegressionOLSVertical");
    let error = spec.machine(0, &json!([[[1, 2], [2, 4], [3, 6]]])).unwrap_err();
    assert!(error.to_string().contains("rank-deficient"), "{error}");
}

/// What one run delivers to each party, decoded.
fn transcript(spec: &Spec, inputs: &[Value], seed: u64) -> Vec<Vec<(usize, ProductMessage)>> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let transcript = run_recorded(spec, inputs, &mut rng).unwrap();
    transcript
        .received
        .iter()
        .map(|messages| {
            messages
                .iter()
                .map(|(from, bytes)| (*from, serde_json::from_slice(bytes).unwrap()))
                .collect()
        })
        .collect()
}

#[test]
fn data_owners_receive_uniform_matrices_and_the_helper_nothing_of_the_inputs() {
    let spec = two_with_helper("SecureMatrixMultiplication");
    // Small, structured inputs: any unmasked entry would show as a top byte of 0x00 or 0xff.
    let x = json!([[[1, 0, -1], [2, 3, 0]]]);
    let y = json!([[[0, 1], [1, 0], [5, -5]]]);
    let mut top_bytes = [[0u32; 256]; 2];
    let mut low_bytes = [[0u32; 256]; 2];
    let runs = 400;
    for seed in 0..runs {
        for (owner, messages) in transcript(&spec, &inputs_with_helper(x.clone(), y.clone()), seed)
            .into_iter()
            .take(2)
            .enumerate()
        {
            for (_, message) in messages {
                // A share is rounded to the grid of 2^12 (digits_after 12): uniform above it.
                let (matrix, grid) = match message {
                    ProductMessage::Masked(m) | ProductMessage::Correlation(m) => (m, 0),
                    ProductMessage::Share(m) => (m, 12),
                    other => panic!("a data owner received {other:?}"),
                };
                for i in 0..matrix.rows() {
                    for value in matrix.row(i) {
                        let bytes = Z256::to_le_bytes(*value);
                        let low = u32::from_le_bytes(bytes[..4].try_into().unwrap());
                        assert_eq!(low & ((1 << grid) - 1), 0, "a share off the grid");
                        top_bytes[owner][bytes[31] as usize] += 1;
                        low_bytes[owner][(low >> grid) as u8 as usize] += 1;
                    }
                }
            }
        }
    }
    // Chi-square with 255 degrees of freedom: the 99.9% quantile is about 330.
    for histogram in top_bytes.iter().chain(&low_bytes) {
        let total: u32 = histogram.iter().sum();
        let expected = total as f64 / 256.0;
        let chi2: f64 = histogram
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        assert!(chi2 < 330.0, "not uniform: chi² = {chi2:.1} over {total} bytes");
    }
    // The helper's view is the same byte for byte whatever the inputs (same shapes, same coins).
    let other_x = json!([[[9, 9, 9], [-7, 100, 4]]]);
    let other_y = json!([[[3, 3], [0, 0], [1, 1]]]);
    let a = transcript(&spec, &inputs_with_helper(x, y), 7);
    let b = transcript(&spec, &inputs_with_helper(other_x, other_y), 7);
    assert_eq!(a[HELPER], b[HELPER]);
    assert!(a[HELPER].iter().all(|(_, m)| matches!(m, ProductMessage::Seeds { .. })));
}

/// The original's method without a helper, for parties that opt in: right products, and it leaks
/// what its parameter's name says (a square X sends party 1's matrix to party 0 as it is).
#[test]
fn the_opt_in_method_without_helper_multiplies_and_reveals_what_it_says() {
    use fsc_simon::matrix::projected_product::ProjectedMessage;
    let spec = Spec::new(
        "SecureMatrixMultiplication",
        &json!({"reveal_inputs_without_helper": true}),
        2,
    )
    .unwrap();
    assert_eq!(spec.participants(), 2);
    let vector = load("secure_matrix_multiplication_2p_test");
    let inputs: Vec<Value> = serde_json::from_value(vector["inputs"].clone()).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(16);
    let transcript = run_recorded(&spec, &inputs, &mut rng).unwrap();
    let received: Vec<Vec<ProjectedMessage>> = transcript
        .received
        .iter()
        .map(|messages| {
            messages
                .iter()
                .map(|(_, bytes)| serde_json::from_slice(bytes).unwrap())
                .collect()
        })
        .collect();
    let outputs = transcript.outputs;
    let want = matrix_of(&vector["result"], "product");
    for output in &outputs {
        for (g, w) in matrix_of(output, "product").iter().flatten().zip(want.iter().flatten()) {
            assert!((g - w).abs() < 1e-9, "{output}");
        }
    }
    let y = json!({"rows": 3, "cols": 3, "data": [-1.0, 4.0, 7.0, 2.0, -5.0, 3.0, 0.0, 1.0, -5.0]});
    assert!(
        received[0]
            .iter()
            .any(|m| serde_json::to_value(m).unwrap() == json!({ "Projected": y })),
        "{:?}",
        received[0]
    );

    let ols = Spec::new(
        "StatisticsRegressionOLSVertical",
        &json!({"reveal_inputs_without_helper": true}),
        2,
    )
    .unwrap();
    let vector = load("statistics_regression_ols_vertical_2p_test");
    let inputs: Vec<Value> = serde_json::from_value(vector["inputs"].clone()).unwrap();
    let outputs = run_all(&ols, &inputs, &mut rng).unwrap();
    for (b, want) in matrix_of(&outputs[1], "mle").iter().flatten().zip([5.0, 6.0, 7.0]) {
        assert!((b - want).abs() < 1e-9, "{outputs:?}");
    }
    // Rectangular X with room for a complement: still the right product.
    let outputs = run_all(&spec, &[json!([[[1, 2, 3]]]), json!([[[4], [5], [6]]])], &mut rng).unwrap();
    assert!((matrix_of(&outputs[0], "product")[0][0] - 32.0).abs() < 1e-9);
    assert!(
        Spec::new(
            "SecureMatrixMultiplication",
            &json!({"reveal_inputs_without_helper": true}),
            3
        )
        .is_err()
    );
}
