//! StatisticsUnivariate with `dp`: the three noisy slots (Σx, n, Σx² of clipped values on the
//! grid) opened as the masked sum opens them, against the mechanism's distribution for
//! n = 2, 3, 5, one party's share against the variance docs/protocols.md states, and whole runs
//! through the simulator: the same output at every party, only the noisy fields, and the
//! parameter's validation.

use super::distribution_tests::{assert_noise, convolved, variance};
use crate::dp::DpParameters;
use crate::dp::clipping::Clipping;
use crate::dp::samplers::tests::{acceptable, chi_square, gaussian_pmf, laplace_pmf};
use crate::machine::Spec;
use crate::simulate::run_all;
use crate::z2k::Z256;
use num_traits::ToPrimitive;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

/// Every party's input. On the grid 0.1 with bounds [−1, 0.5]: 5.0 and the int 2 clip to 0.5
/// (5 units; squares 0.25: 2.5, ties away from zero to 3), −7.25 to −1 (−10; squares 10), 0.3 is
/// 3 (0.09: 1), 0.25 ties to 3 (0.0625: 1). Per party: Σ 6 units, n 5, Σx² 18 units.
fn input() -> Value {
    json!([5.0, -7.25, 0.3, 0.25, 2])
}

const TRUTH: [i64; 3] = [6, 5, 18];

fn dp(value: Value, parties: usize) -> DpParameters {
    serde_json::from_value::<DpParameters>(value)
        .unwrap()
        .validate(parties, true)
        .unwrap()
}

/// `draws` opened slot vectors of `parties` parties, each encoded and noised by the functions
/// the protocol calls and summed in the ring as the masked sum sums them (the masks cancel),
/// less the truth; and party 0's noise shares alone.
fn opened(dp: &DpParameters, parties: usize, draws: usize) -> ([Vec<i64>; 3], [Vec<i64>; 3]) {
    let clipping = Clipping::new(dp, 1, true);
    let clean = clipping.encode(&input()).unwrap();
    let (mut errors, mut shares) = <([Vec<i64>; 3], [Vec<i64>; 3])>::default();
    let mut rng = ChaCha20Rng::seed_from_u64(11 + parties as u64);
    let signed = |z: &Z256| z.to_signed_bigint().to_i64().unwrap();
    for _ in 0..draws {
        let mut total = vec![Z256::ZERO; 3];
        for party in 0..parties {
            let mut slots = clean.clone();
            clipping.add_noise(&mut slots, parties, &mut rng).unwrap();
            if party == 0 {
                for (slot, share) in shares.iter_mut().enumerate() {
                    share.push(signed(&(slots[slot] - clean[slot])));
                }
            }
            total.iter_mut().zip(&slots).for_each(|(t, s)| *t += *s);
        }
        let noisy = clipping.open(&total).unwrap();
        let values = [
            noisy.sum.to_i64().unwrap(),
            noisy.samples,
            noisy.squares.unwrap().to_i64().unwrap(),
        ];
        for (slot, value) in values.iter().enumerate() {
            errors[slot].push(value - TRUTH[slot] * parties as i64);
        }
    }
    (errors, shares)
}

/// ε = 15, a third to each slot: Δ = 10 units for the sum and for the squares (grid(max(1,
/// 0.25)) = 10), so their shares have scale 10/5 = 2, the count's 1/5.
#[test]
fn laplace_slots_open_with_the_mechanisms_distribution() {
    for parties in [2usize, 3, 5] {
        let dp = dp(json!({"epsilon": 15.0, "bounds": [-1, 0.5]}), parties);
        let mechanisms = Clipping::new(&dp, 1, true).mechanisms(parties).unwrap();
        let scales: Vec<f64> = mechanisms.iter().map(|m| m.scale).collect();
        assert_eq!(scales, [2.0, 0.2, 2.0]);
        let (errors, shares) = opened(&dp, parties, 20_000);
        for (slot, (cut, reach)) in [(8, 40), (1, 10), (8, 40)].into_iter().enumerate() {
            let pmf = convolved(laplace_pmf(scales[slot]), parties, reach);
            let (statistic, df) = chi_square(&errors[slot], cut, pmf);
            assert!(
                acceptable(statistic, df),
                "n = {parties}, slot {slot}: χ² = {statistic} on {df} df"
            );
        }
        // The count's shares are almost all 0 at scale 0.2 (variance 0.0136): too rare to
        // estimate their variance here; the samplers' tests cover that regime.
        for slot in [0, 2] {
            let (claimed, seen) = (mechanisms[slot].per_party_variance(), variance(&shares[slot]));
            assert!(
                (seen / claimed - 1.0).abs() < 0.06,
                "slot {slot}: share variance {seen}, docs say {claimed}"
            );
        }
    }
}

/// ρ = 3, a third to each slot: σ² = Δ²/(2·1) = 50 units² per party for the sum and the squares,
/// 1/2 for the count.
#[test]
fn gaussian_slots_open_with_the_mechanisms_distribution() {
    for parties in [2usize, 3, 5] {
        let dp = dp(json!({"rho": 3.0, "bounds": [-1, 0.5]}), parties);
        let (errors, shares) = opened(&dp, parties, 20_000);
        for (slot, (sigma2, cut, reach)) in [(50.0, 15, 60), (0.5, 2, 10), (50.0, 15, 60)].into_iter().enumerate() {
            let pmf = convolved(gaussian_pmf(sigma2), parties, reach);
            let (statistic, df) = chi_square(&errors[slot], cut, pmf);
            assert!(
                acceptable(statistic, df),
                "n = {parties}, slot {slot}: χ² = {statistic} on {df} df"
            );
        }
        let seen = variance(&shares[0]);
        assert!(
            (seen / 50.0 - 1.0).abs() < 0.06,
            "sum share variance {seen}, docs say 50"
        );
    }
}

/// Whole runs: every party opens the same output, which has only the noisy count, sum, mean,
/// variance and standard deviation, and names the three mechanisms; over the runs the noisy sum
/// has mean 0 error and the variance n·σ² (five standard errors).
#[test]
fn noisy_univariate_runs_open_only_noisy_fields() {
    let parameters = json!({"digits_after": 1, "dp": {"rho": 3.0, "bounds": [-1, 0.5]}});
    for (parties, runs) in [(2usize, 300usize), (3, 300), (5, 150)] {
        let spec = Spec::new("StatisticsUnivariate", &parameters, parties).unwrap();
        let inputs = vec![input(); parties];
        let mut rng = ChaCha20Rng::seed_from_u64(3 + parties as u64);
        let mut errors = Vec::new();
        for _ in 0..runs {
            let outputs = run_all(&spec, &inputs, &mut rng).unwrap();
            assert!(outputs.iter().all(|o| o == &outputs[0]), "{outputs:?}");
            let result = &outputs[0]["result"];
            let mut keys: Vec<&str> = result.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["dp", "mean", "samples", "standard_deviation", "sum", "variance"]);
            for slot in ["sum", "samples", "sum_of_squares"] {
                assert_eq!(result["dp"][slot]["mechanism"], "discrete_gaussian", "{result}");
                assert_eq!(result["dp"][slot]["budget_share"], json!(1.0 / 3.0));
            }
            assert_eq!(result["dp"]["bounds"], json!([-1.0, 0.5]));
            let mean = result["mean"].as_f64();
            assert!(mean.is_none_or(|m| (-1.0..=0.5).contains(&m)), "{result}");
            let variance = result["variance"].as_f64();
            assert!(variance.is_none_or(|v| v >= 0.0), "{result}");
            errors.push((result["sum"].as_f64().unwrap() * 10.0).round() as i64 - TRUTH[0] * parties as i64);
        }
        assert_noise(&errors, 50.0 * parties as f64, &format!("n = {parties}"));
    }
}

/// With much data and a generous budget, the post-processed mean and variance land near the
/// clipped truth: 3 × 1000 values 0..=9 (mean 4.5, sample variance 8.2527…), bounds [0, 10].
#[test]
fn the_mean_and_variance_follow_from_the_noisy_slots() {
    let parameters = json!({"digits_after": 2, "dp": {"epsilon": 30.0, "bounds": [0, 10]}});
    let spec = Spec::new("StatisticsUnivariate", &parameters, 3).unwrap();
    let values: Vec<i64> = (0..1000).map(|i| i % 10).collect();
    let inputs = vec![json!(values); 3];
    let outputs = run_all(&spec, &inputs, &mut ChaCha20Rng::seed_from_u64(9)).unwrap();
    let result = &outputs[0]["result"];
    assert!((result["samples"].as_i64().unwrap() - 3000).abs() < 10, "{result}");
    assert!((result["mean"].as_f64().unwrap() - 4.5).abs() < 0.05, "{result}");
    assert!((result["variance"].as_f64().unwrap() - 8.2527).abs() < 0.2, "{result}");
    let sd = result["standard_deviation"].as_f64().unwrap();
    assert!(
        (sd * sd - result["variance"].as_f64().unwrap()).abs() < 1e-9,
        "{result}"
    );
    assert_eq!(result["minimum"], Value::Null);
    assert_eq!(result["median"], Value::Null);
}

#[test]
fn dp_statistics_need_bounds_and_a_grid() {
    for (parameters, says) in [
        (json!({"digits_after": 2, "dp": {"epsilon": 1.0}}), "needs bounds"),
        (json!({"dp": {"epsilon": 1.0, "bounds": [0, 1]}}), "needs digits_after"),
        (
            json!({"digits_after": 41, "dp": {"epsilon": 1.0, "bounds": [0, 1]}}),
            "at most 40",
        ),
        (
            json!({"digits_after": 0, "dp": {"epsilon": 1.0, "bounds": [0, 0.4]}}),
            "round to 0",
        ),
        // The squares' sensitivity: 10^4² · 10^12 units is beyond 2^64, the sum's 10^16 is not.
        (
            json!({"digits_after": 12, "dp": {"epsilon": 1.0, "bounds": [0, 1e4]}}),
            "sum of squares",
        ),
        (
            json!({"digits_after": 2, "dp": {"epsilon": 1.0, "bounds": [0, 1], "collusion": 1}}),
            "not supported",
        ),
    ] {
        let error = Spec::new("StatisticsUnivariate", &parameters, 3)
            .unwrap_err()
            .to_string();
        assert!(error.contains(says), "{parameters}: {error}");
    }
    let spec = Spec::new(
        "StatisticsUnivariate",
        &json!({"digits_after": 2, "digits_before": 12, "dp": {"rho": 1, "bounds": [0, 1]}}),
        3,
    )
    .unwrap();
    assert_eq!(
        spec.parameters_json(),
        json!({"digits_after": 2, "dp": {"rho": 1.0, "collusion": 2, "bounds": [0.0, 1.0]}})
    );
    assert!(spec.dp().is_some());
    // Without dp, the reference's fixed-point parameters are dropped, as before.
    let plain = Spec::new("StatisticsUnivariate", &json!({"digits_after": 12}), 3).unwrap();
    assert_eq!(plain.parameters_json(), json!({}));
}

/// StatisticsContingencyVertical has no masked sum to put noise into: `dp` is refused as
/// invalid parameters, saying why.
#[test]
fn vertical_tables_refuse_dp() {
    let error = Spec::new("StatisticsContingencyVertical", &json!({"dp": {"epsilon": 1.0}}), 2).unwrap_err();
    assert_eq!(error.code(), "invalid_parameters");
    assert!(error.to_string().contains("does not take dp"), "{error}");
}
