//! The opened noisy total against the mechanism: n parties' noise shares, drawn by the same
//! function the protocols call ([`crate::dp::Mechanism::add_noise`]) and summed in the ring as
//! the masked sum sums them, have the n-fold convolution of the share's PMF (chi-square over
//! 10^5 totals, n = 2, 3, 5); one party's share alone has the variance docs/protocols.md states.
//! Full protocol runs through the simulator (fewer: each costs a whole computation) check that
//! the noise really is in the opened table, and the suppression below `min_cell_count`.

use crate::dp::samplers::tests::{acceptable, chi_square, gaussian_pmf, laplace_pmf};
use crate::dp::{DpParameters, Mechanism, Sensitivity};
use crate::machine::Spec;
use crate::simulate::run_all;
use crate::z2k::Z64;
use num_traits::ToPrimitive;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

const TOTALS: usize = 100_000;

fn mechanism(dp: Value, parties: usize) -> Mechanism {
    serde_json::from_value::<DpParameters>(dp)
        .unwrap()
        .validate(parties, false)
        .unwrap()
        .mechanism(Sensitivity::COUNT, parties)
        .unwrap()
}

/// The PMF of the sum of `n` independent draws of `pmf`, over `−reach..=reach`.
pub(super) fn convolved(pmf: impl Fn(i64) -> f64, n: usize, reach: i64) -> impl Fn(i64) -> f64 {
    let one: Vec<f64> = (-reach..=reach).map(&pmf).collect();
    let mut sum = vec![1.0];
    for _ in 0..n {
        let mut next = vec![0.0; sum.len() + one.len() - 1];
        for (i, a) in sum.iter().enumerate() {
            for (j, b) in one.iter().enumerate() {
                next[i + j] += a * b;
            }
        }
        sum = next;
    }
    let offset = n as i64 * reach;
    move |x| sum.get((x + offset) as usize).copied().unwrap_or(0.0)
}

/// `TOTALS` opened totals of `parties` parties' shares (each a vector of `TOTALS` cells, summed
/// in Z_2^64 and read back signed), and party 0's shares alone.
fn totals(mechanism: &Mechanism, parties: usize, seed: u64) -> (Vec<i64>, Vec<i64>) {
    let mut total = vec![Z64::ZERO; TOTALS];
    let mut first = Vec::new();
    for party in 0..parties {
        let mut rng = ChaCha20Rng::seed_from_u64(seed * 10 + party as u64);
        let mut share = vec![Z64::ZERO; TOTALS];
        mechanism.add_noise(&mut share, &mut rng);
        if party == 0 {
            first = share.iter().map(|s| s.to_signed_bigint().to_i64().unwrap()).collect();
        }
        total.iter_mut().zip(&share).for_each(|(t, s)| *t += *s);
    }
    let total = total.iter().map(|t| t.to_signed_bigint().to_i64().unwrap()).collect();
    (total, first)
}

pub(super) fn variance(draws: &[i64]) -> f64 {
    let n = draws.len() as f64;
    let mean = draws.iter().sum::<i64>() as f64 / n;
    draws.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0)
}

/// Asserts that noise `errors` seen over whole runs have mean 0 and variance `expected`, each
/// within five standard errors (√(2/runs) relative for the variance).
pub(super) fn assert_noise(errors: &[i64], expected: f64, what: &str) {
    let runs = errors.len() as f64;
    let mean = errors.iter().sum::<i64>() as f64 / runs;
    assert!(mean.abs() < 5.0 * (expected / runs).sqrt(), "{what}: mean noise {mean}");
    let spread = variance(errors);
    assert!(
        (spread / expected - 1.0).abs() < 5.0 * (2.0 / runs).sqrt(),
        "{what}: noise variance {spread}, expected {expected}"
    );
}

/// The check for one mechanism: the totals' chi-square, and the share's variance within 3%
/// (the standard error of a variance over 10^5 draws is about 0.5% for these distributions).
fn check(dp: Value, share_pmf: impl Fn(i64) -> f64, reach: i64, cut: i64) {
    for (seed, parties) in [(1u64, 2usize), (2, 3), (3, 5)] {
        let mechanism = mechanism(dp.clone(), parties);
        let (total, first) = totals(&mechanism, parties, seed);
        let (statistic, df) = chi_square(&total, cut, convolved(&share_pmf, parties, reach));
        assert!(
            acceptable(statistic, df),
            "{dp} n = {parties}: χ² = {statistic} on {df} df"
        );
        let (claimed, seen) = (mechanism.per_party_variance(), variance(&first));
        assert!(
            (seen / claimed - 1.0).abs() < 0.03,
            "{dp}: share variance {seen}, docs say {claimed}"
        );
        let total_claimed = mechanism.describe()["total_variance"].as_f64().unwrap();
        assert!(
            (variance(&total) / total_claimed - 1.0).abs() < 0.03,
            "{dp} n = {parties}: total variance"
        );
    }
}

#[test]
fn the_opened_total_of_discrete_gaussian_shares_has_their_convolution() {
    // ρ = 1/8: σ² = 4 per party.
    check(json!({"rho": 0.125}), gaussian_pmf(4.0), 30, 8);
}

#[test]
fn the_opened_total_of_discrete_laplace_shares_has_their_convolution() {
    // ε = 1: scale 1 per party.
    check(json!({"epsilon": 1.0}), laplace_pmf(1.0), 40, 7);
}

/// Contingency tables of 2, 3 and 5 parties with `dp`, run whole through the simulator: every
/// party opens the same noisy table and names the mechanism, and the noise over the runs has
/// mean 0 and the variance n·σ² of n shares (σ² = 4 per party).
#[test]
fn noisy_contingency_tables_open_the_same_at_every_party() {
    let parameters = json!({"rows": ["a", "b"], "columns": [0, 1], "dp": {"rho": 0.125}});
    let pairs = [json!(["a", 0]), json!(["a", 1]), json!(["b", 0]), json!(["b", 1])];
    for (parties, runs) in [(2usize, 150usize), (3, 150), (5, 60)] {
        let spec = Spec::new("StatisticsContingency", &parameters, parties).unwrap();
        // Party p holds p + 1 records, cycling through the cells.
        let inputs: Vec<Value> = (0..parties)
            .map(|p| json!((0..=p).map(|i| pairs[(p + i) % 4].clone()).collect::<Vec<_>>()))
            .collect();
        let mut truth = [0i64; 4];
        (0..parties).for_each(|p| (0..=p).for_each(|i| truth[(p + i) % 4] += 1));
        let mut rng = ChaCha20Rng::seed_from_u64(42 + parties as u64);
        let mut errors = Vec::new();
        for _ in 0..runs {
            let outputs = run_all(&spec, &inputs, &mut rng).unwrap();
            assert!(outputs.iter().all(|o| o == &outputs[0]), "{outputs:?}");
            let result = &outputs[0]["result"];
            assert_eq!(result["dp"]["mechanism"], "discrete_gaussian");
            assert_eq!(result["dp"]["collusion"], parties - 1);
            assert_eq!(result["dp"]["per_party_sigma"], 2.0);
            for (cell, (row, column)) in [("a", "0"), ("a", "1"), ("b", "0"), ("b", "1")].iter().enumerate() {
                errors.push(result["table"][row][column].as_i64().unwrap() - truth[cell]);
            }
        }
        assert_noise(&errors, 4.0 * parties as f64, &format!("n = {parties}"));
    }
}

/// `min_cell_count` (one party's own, from its policy) suppresses that party's noisy cells below
/// it: shown as null and listed; without `dp` it changes nothing in the engine.
#[test]
fn cells_below_min_cell_count_are_suppressed_under_dp() {
    let inputs = [json!(vec!["x"; 40]), json!(["x", "y"])];
    let run = |parameters: Value| {
        let spec = Spec::new("StatisticsFrequency", &parameters, 2)
            .unwrap()
            .suppressing(Some(10));
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        run_all(&spec, &inputs, &mut rng).unwrap()
    };
    let outputs = run(json!({"categories": ["x", "y", "z"], "dp": {"epsilon": 4.0}}));
    let result = &outputs[0]["result"];
    assert!(result["histogram"]["x"].as_i64().unwrap() > 30, "{result}");
    assert_eq!(result["histogram"]["y"], Value::Null);
    assert_eq!(result["histogram"]["z"], Value::Null);
    assert_eq!(result["suppressed"], json!(["y", "z"]));
    assert_eq!(result["mode"], "x");
    let plain = run(json!({"categories": ["x", "y", "z"]}));
    assert_eq!(
        plain[0]["result"],
        json!({"histogram": {"x": 41, "y": 1, "z": 0}, "mode": "x"})
    );
}

/// The parameter is checked where the definition is: a table without given categories, or a
/// malformed `dp`, is refused as invalid parameters.
#[test]
fn dp_tables_need_their_categories_given() {
    for (protocol, parameters, says) in [
        (
            "StatisticsFrequency",
            json!({"dp": {"epsilon": 1.0}}),
            "categories given",
        ),
        (
            "StatisticsContingency",
            json!({"rows": [1], "dp": {"epsilon": 1.0}}),
            "categories given",
        ),
        (
            "StatisticsContingency",
            json!({"rows": [1], "columns": [2], "dp": {"epsilon": -1}}),
            "positive",
        ),
        (
            "StatisticsFrequency",
            json!({"categories": [1], "dp": {"rho": 1, "epsilon": 1}}),
            "not both",
        ),
    ] {
        let error = Spec::new(protocol, &parameters, 3).unwrap_err().to_string();
        assert!(error.contains(says), "{parameters}: {error}");
    }
    let spec = Spec::new("StatisticsFrequency", &json!({"categories": [1], "dp": {"rho": 1}}), 3).unwrap();
    assert_eq!(spec.parameters_json()["dp"], json!({"rho": 1.0, "collusion": 2}));
}
