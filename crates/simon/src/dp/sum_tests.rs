//! SecureSum with `dp`, run whole through the simulator: values clipped to the bounds on the
//! grid 10^−digits_after, the opened noisy sum and count against the mechanism's distribution
//! (the n-fold convolution of one share's PMF, in grid units) for n = 2, 3, 5; the sensitivity
//! in grid units; and the parameter's validation.

use super::distribution_tests::{assert_noise, convolved};
use crate::dp::clipping::sensitivity_units;
use crate::dp::samplers::tests::{acceptable, chi_square, laplace_pmf};
use crate::machine::Spec;
use crate::simulate::run_all;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

/// Every party's input: 5.0 and the int 2 clip to 0.5 (5 units of 0.1), −7.25 to −1 (−10), 0.3
/// is 3 units, 0.25 ties away from zero to 3: 6 units, 5 records per party.
fn input() -> Value {
    json!([5.0, -7.25, 0.3, 0.25, 2])
}

/// The noisy sums and counts, in grid units, less the truth, over `runs` runs of `parties`.
fn errors(dp: Value, parties: usize, runs: usize) -> (Vec<i64>, Vec<i64>, Value) {
    let parameters = json!({"digits_after": 1, "dp": dp});
    let spec = Spec::new("SecureSum", &parameters, parties).unwrap();
    let inputs = vec![input(); parties];
    let mut rng = ChaCha20Rng::seed_from_u64(7 + parties as u64);
    let (mut sums, mut counts, mut named) = (Vec::new(), Vec::new(), Value::Null);
    for _ in 0..runs {
        let outputs = run_all(&spec, &inputs, &mut rng).unwrap();
        assert!(outputs.iter().all(|o| o == &outputs[0]), "{outputs:?}");
        let result = &outputs[0]["result"];
        // The sum is decoded from whole units of 0.1: ×10 and rounded is exactly those units.
        sums.push((result["sum"].as_f64().unwrap() * 10.0).round() as i64 - 6 * parties as i64);
        counts.push(result["samples"].as_i64().unwrap() - 5 * parties as i64);
        named = result["dp"].clone();
    }
    (sums, counts, named)
}

/// ε = 10, split evenly: the sum's shares have scale Δ/(ε/2) = 10/5 = 2 units (bounds [−1, 0.5]
/// on the grid 0.1: Δ = 10), the count's 1/5.
#[test]
fn noisy_sums_open_with_the_mechanisms_distribution() {
    for parties in [2usize, 3, 5] {
        let (sums, counts, named) = errors(json!({"epsilon": 10.0, "bounds": [-1, 0.5]}), parties, 1500);
        assert_eq!(named["bounds"], json!([-1.0, 0.5]));
        assert_eq!(named["sum"]["mechanism"], "discrete_laplace");
        assert_eq!(named["sum"]["sensitivity"]["l1"], 10);
        assert_eq!(named["sum"]["per_party_scale"], 2.0);
        assert_eq!(named["sum"]["budget_share"], 0.5);
        assert_eq!(named["samples"]["per_party_scale"], 0.2);
        let (statistic, df) = chi_square(&sums, 8, convolved(laplace_pmf(2.0), parties, 40));
        assert!(
            acceptable(statistic, df),
            "n = {parties}: sum χ² = {statistic} on {df} df"
        );
        let (statistic, df) = chi_square(&counts, 1, convolved(laplace_pmf(0.2), parties, 10));
        assert!(
            acceptable(statistic, df),
            "n = {parties}: count χ² = {statistic} on {df} df"
        );
    }
}

/// ρ = 1, split evenly: σ² = Δ²/(2·ρ/2) = 100 units² per party for the sum; the opened noise
/// has mean 0 and variance n·σ² (five standard errors).
#[test]
fn gaussian_noisy_sums_have_the_documented_variance() {
    for parties in [2usize, 3, 5] {
        let (sums, _, named) = errors(json!({"rho": 1.0, "bounds": [-1, 0.5]}), parties, 600);
        assert_eq!(named["sum"]["mechanism"], "discrete_gaussian");
        assert!(
            (named["sum"]["per_party_sigma"].as_f64().unwrap() - 10.0).abs() < 1e-9,
            "{named}"
        );
        assert_noise(&sums, 100.0 * parties as f64, &format!("n = {parties}"));
    }
}

#[test]
fn the_sensitivity_is_the_largest_bound_on_the_grid() {
    assert_eq!(sensitivity_units([-3.0, 2.5], 2), Ok(300));
    assert_eq!(sensitivity_units([0.0, 2.5], 0), Ok(3)); // 2.5 ties away from zero
    assert_eq!(sensitivity_units([-0.06, 0.01], 1), Ok(1)); // −0.6 units round to −1
    assert!(sensitivity_units([-0.04, 0.04], 1).unwrap_err().contains("round to 0"));
    assert!(sensitivity_units([0.0, 1e8], 12).unwrap_err().contains("beyond 2^64"));
    assert_eq!(sensitivity_units([-1e7, 1.0], 12), Ok(10_000_000_000_000_000_000));
}

#[test]
fn dp_sums_need_bounds_and_a_grid() {
    for (parameters, says) in [
        (json!({"digits_after": 2, "dp": {"epsilon": 1.0}}), "needs bounds"),
        (json!({"dp": {"epsilon": 1.0, "bounds": [0, 1]}}), "needs digits_after"),
        (
            json!({"digits_after": 2, "bound": 10, "dp": {"epsilon": 1.0, "bounds": [0, 1]}}),
            "no bound",
        ),
        (
            json!({"digits_after": 2, "dp": {"epsilon": 1.0, "bounds": [1, 0]}}),
            "lo < hi",
        ),
        (
            json!({"digits_after": 0, "dp": {"epsilon": 1.0, "bounds": [0, 0.4]}}),
            "round to 0",
        ),
        (
            json!({"digits_after": 2, "dp": {"epsilon": 1.0, "bounds": [0, 1], "collusion": 1}}),
            "not supported",
        ),
        (
            json!({"digits_after": 2, "dp": {"epsilon": 1e-12, "bounds": [0, 1]}}),
            "noise scale",
        ),
    ] {
        let error = Spec::new("SecureSum", &parameters, 3).unwrap_err().to_string();
        assert!(error.contains(says), "{parameters}: {error}");
    }
    let spec = Spec::new(
        "SecureSum",
        &json!({"digits_after": 2, "dp": {"rho": 1, "bounds": [0, 1]}}),
        3,
    )
    .unwrap();
    assert_eq!(
        spec.parameters_json()["dp"],
        json!({"rho": 1.0, "collusion": 2, "bounds": [0.0, 1.0]})
    );
    assert!(spec.dp().is_some());
}
