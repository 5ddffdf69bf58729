//! StatisticsUnivariate, StatisticsBivariate, StatisticsFrequency and StatisticsContingency
//! against plaintext implementations, for 2 to 5 parties on random inputs (ints, floats with many
//! decimals, negatives, offsets, duplicates, an empty party). Pure: no I/O.

use fsc_simon::Spec;
use fsc_simon::simulate::run_all;
use fsc_simon::statistics::exact::{exact, sqrt_to_f64, to_f64};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn run(protocol: &str, parameters: Value, inputs: &[Value], rng: &mut ChaCha20Rng) -> Value {
    let spec = Spec::new(protocol, &parameters, inputs.len()).unwrap();
    let outputs = run_all(&spec, inputs, rng).unwrap_or_else(|e| panic!("{protocol} on {inputs:?}: {e}"));
    assert!(
        outputs.windows(2).all(|w| w[0] == w[1]),
        "parties disagree: {outputs:?}"
    );
    outputs[0]["result"].clone()
}

fn uniform(rng: &mut ChaCha20Rng) -> f64 {
    rng.next_u64() as f64 / u64::MAX as f64
}

/// Random values around `offset`: many-decimal floats and ints, negative ones, repeats.
fn random_values(rng: &mut ChaCha20Rng, offset: f64, len: u64) -> Vec<f64> {
    let mut values = Vec::new();
    for _ in 0..len {
        let x = match rng.next_u64() % 4 {
            0 => ((rng.next_u64() % 201) as f64 - 100.0) + offset,
            1 if !values.is_empty() => values[(rng.next_u64() % values.len() as u64) as usize],
            _ => (uniform(rng) - 0.5) * 200.0 + offset,
        };
        values.push(x);
    }
    values
}

/// Within 1e-9 relative, absolute below 1; nulls equal.
fn assert_close(key: &str, got: &Value, want: Option<f64>) {
    match (got.as_f64(), want.filter(|w| w.is_finite())) {
        (Some(g), Some(w)) => assert!(
            (g - w).abs() <= 1e-9 * 1f64.max(g.abs()).max(w.abs()),
            "{key}: got {g}, want {w}"
        ),
        (None, None) => assert!(got.is_null(), "{key}: {got}"),
        (g, w) => panic!("{key}: got {g:?}, want {w:?}"),
    }
}

/// The 22 statistics of all values, by the textbook two-pass formulas.
fn univariate(all: &[f64]) -> BTreeMap<&'static str, Option<f64>> {
    let n = all.len() as f64;
    let mean = all.iter().sum::<f64>() / n;
    let central = |k: i32| all.iter().map(|x| (x - mean).powi(k)).sum::<f64>();
    let var_mle = central(2) / n;
    let variance = (all.len() > 1).then(|| central(2) / (n - 1.0));
    let standardised = |k: i32| (var_mle > 0.0).then(|| central(k) / n / var_mle.powf(k as f64 / 2.0));
    let min = all.iter().copied().fold(f64::INFINITY, f64::min);
    let max = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sd = variance.map(f64::sqrt);
    let per_mean = |x: Option<f64>| x.filter(|_| mean != 0.0).map(|x| x / mean);
    BTreeMap::from([
        ("samples", Some(n)),
        ("minimum", Some(min)),
        ("maximum", Some(max)),
        ("sum", Some(all.iter().sum())),
        ("mean", Some(mean)),
        (
            "harmonic_mean",
            (!all.contains(&0.0)).then(|| n / all.iter().map(|x| 1.0 / x).sum::<f64>()),
        ),
        (
            "geometric_mean",
            (min > 0.0).then(|| (all.iter().map(|x| x.ln()).sum::<f64>() / n).exp()),
        ),
        ("variance", variance),
        ("variance_mle", Some(var_mle)),
        ("variance_of_sample_mean", variance.map(|v| v / n)),
        ("standard_deviation", sd),
        ("standard_deviation_mle", Some(var_mle.sqrt())),
        ("standard_error_of_sample_mean", variance.map(|v| (v / n).sqrt())),
        ("coefficient_of_variation", per_mean(sd)),
        ("coefficient_of_variation_mle", per_mean(Some(var_mle.sqrt()))),
        (
            "root_mean_square",
            Some((all.iter().map(|x| x * x).sum::<f64>() / n).sqrt()),
        ),
        ("root_mean_square_deviation", Some(var_mle.sqrt())),
        ("skewness", standardised(3)),
        ("kurtosis", standardised(4)),
        ("kurtosis_excess", standardised(4).map(|k| k - 3.0)),
        ("hyper_skewness", standardised(5)),
        ("hyper_flatness", standardised(6)),
    ])
}

#[test]
fn univariate_statistics_match_the_textbook_formulas() {
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    for parties in 2..=5 {
        for offset in [0.0, 250.0, -1e4] {
            let mut inputs: Vec<Vec<f64>> = (0..parties)
                .map(|_| {
                    let len = 1 + rng.next_u64() % 12;
                    random_values(&mut rng, offset, len)
                })
                .collect();
            if parties > 2 {
                inputs[1].clear();
            }
            let all: Vec<f64> = inputs.iter().flatten().copied().collect();
            let result = run(
                "StatisticsUnivariate",
                json!({}),
                &inputs.iter().map(|v| json!(v)).collect::<Vec<_>>(),
                &mut rng,
            );
            let want = univariate(&all);
            assert_eq!(result.as_object().unwrap().len(), 22);
            assert_eq!(result["samples"], json!(all.len()));
            for (key, value) in want {
                assert_close(key, &result[key], value);
            }
        }
    }
}

#[test]
fn univariate_statistics_of_one_value_or_equal_values_are_null_where_undefined() {
    let mut rng = ChaCha20Rng::seed_from_u64(22);
    let result = run("StatisticsUnivariate", json!({}), &[json!([]), json!([-2.0])], &mut rng);
    assert_eq!(result["mean"], json!(-2.0));
    assert_eq!(result["maximum"], json!(-2.0));
    for key in [
        "variance",
        "standard_deviation",
        "skewness",
        "geometric_mean",
        "standard_error_of_sample_mean",
    ] {
        assert!(result[key].is_null(), "{key}: {result}");
    }
    assert_eq!(result["harmonic_mean"], json!(-2.0));
    let result = run(
        "StatisticsUnivariate",
        json!({}),
        &[json!([0, 3]), json!([3])],
        &mut rng,
    );
    assert!(
        result["harmonic_mean"].is_null() && result["geometric_mean"].is_null(),
        "{result}"
    );
    assert_eq!(result["samples"], json!(3));
}

#[test]
fn bivariate_statistics_match_the_textbook_formulas() {
    let mut rng = ChaCha20Rng::seed_from_u64(23);
    for parties in 2..=5 {
        for offset in [0.0, 1e5] {
            let inputs: Vec<Vec<(f64, f64)>> = (0..parties)
                .map(|_| {
                    let len = 2 + rng.next_u64() % 10;
                    let xs = random_values(&mut rng, offset, len);
                    xs.iter()
                        .map(|&x| (x, 0.5 * x + random_values(&mut rng, -offset, 1)[0]))
                        .collect()
                })
                .collect();
            let all: Vec<(f64, f64)> = inputs.iter().flatten().copied().collect();
            let json_inputs: Vec<Value> = inputs
                .iter()
                .map(|v| json!(v.iter().map(|(x, y)| [x, y]).collect::<Vec<_>>()))
                .collect();
            let result = run("StatisticsBivariate", json!({}), &json_inputs, &mut rng);
            let n = all.len() as f64;
            let (mx, my) = (
                all.iter().map(|p| p.0).sum::<f64>() / n,
                all.iter().map(|p| p.1).sum::<f64>() / n,
            );
            let sxx: f64 = all.iter().map(|p| (p.0 - mx).powi(2)).sum();
            let syy: f64 = all.iter().map(|p| (p.1 - my).powi(2)).sum();
            let sxy: f64 = all.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
            let slope = sxy / sxx;
            assert_eq!(result["samples"], json!(all.len()));
            assert_close("covariance_mle", &result["covariance_mle"], Some(sxy / n));
            assert_close("covariance", &result["covariance"], Some(sxy / (n - 1.0)));
            assert_close(
                "correlation_coefficient",
                &result["correlation_coefficient"],
                Some(sxy / (sxx * syy).sqrt()),
            );
            assert_close("regression_slope", &result["regression_slope"], Some(slope));
            assert_close(
                "regression_intercept",
                &result["regression_intercept"],
                Some(my - slope * mx),
            );
            assert_eq!(result["regression_intercept"], result["regression_interceipt"]);
            let through_origin =
                all.iter().map(|p| p.0 * p.1).sum::<f64>() / all.iter().map(|p| p.0 * p.0).sum::<f64>();
            assert_close(
                "regression_slope_only",
                &result["regression_slope_only"],
                Some(through_origin),
            );
        }
    }
}

/// A pool of categories of every JSON scalar type, including look-alikes.
fn pool() -> Vec<Value> {
    vec![
        json!("a"),
        json!("b"),
        json!("1"),
        json!(1),
        json!(1.5),
        json!(true),
        json!(null),
        json!("a_b"),
        json!(-3),
    ]
}

fn pick(rng: &mut ChaCha20Rng, pool: &[Value]) -> Value {
    pool[(rng.next_u64() % pool.len() as u64) as usize].clone()
}

#[test]
fn frequencies_count_every_value_by_its_json_identity() {
    let mut rng = ChaCha20Rng::seed_from_u64(24);
    let pool = pool();
    for parties in 2..=5 {
        for parameters in [json!({}), json!({"categories": pool})] {
            let inputs: Vec<Vec<Value>> = (0..parties)
                .map(|p| {
                    (0..(p as u64 * 3 + rng.next_u64() % 8))
                        .map(|_| pick(&mut rng, &pool))
                        .collect()
                })
                .collect();
            let mut want: BTreeMap<String, (Value, u64)> = BTreeMap::new();
            for value in inputs.iter().flatten() {
                want.entry(value.to_string()).or_insert((value.clone(), 0)).1 += 1;
            }
            let result = run(
                "StatisticsFrequency",
                parameters.clone(),
                &inputs.iter().map(|v| json!(v)).collect::<Vec<_>>(),
                &mut rng,
            );
            let histogram = result["histogram"].as_object().unwrap();
            let given = parameters.get("categories").is_some();
            assert_eq!(histogram.len(), if given { pool.len() } else { want.len() }, "{result}");
            // "1" beside 1 is written quoted; every other string as itself.
            let name = |v: &Value| match v {
                Value::String(s) if s == "1" && (given || want.contains_key("1")) => v.to_string(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            for (value, count) in want.values() {
                assert_eq!(histogram[&name(value)], json!(count), "{value} in {result}");
            }
            let best = want.values().map(|(_, c)| *c).max().unwrap();
            let mode = want.values().find(|(_, c)| *c == best).unwrap().0.clone();
            assert_eq!(result["mode"], mode, "first maximal value in canonical order");
        }
    }
}

/// Issue 29.1: `1`, `"1"` and the three characters `"1"` are three categories with three keys:
/// the string `"1"` beside `1` is written as its JSON text, which is the plain text of the
/// three-character string, so that one is written as its own JSON text in turn.
#[test]
fn look_alike_categories_keep_keys_of_their_own() {
    let mut rng = ChaCha20Rng::seed_from_u64(26);
    let quoted = json!("\"1\"");
    let inputs = [json!([1, "1"]), json!([quoted, quoted, quoted])];
    let result = run("StatisticsFrequency", json!({}), &inputs, &mut rng);
    assert_eq!(
        result["histogram"],
        json!({"1": 1, "\"1\"": 1, "\"\\\"1\\\"\"": 3}),
        "{result}"
    );
    let pairs = |rows: &[Value]| json!(rows.iter().map(|r| json!([r, "c"])).collect::<Vec<_>>());
    let inputs = [pairs(&[json!(1), json!("1")]), pairs(std::slice::from_ref(&quoted))];
    let result = run("StatisticsContingency", json!({}), &inputs, &mut rng);
    let table = result["table"].as_object().unwrap();
    assert_eq!(table.len(), 3, "{result}");
    assert!(table.values().all(|row| row["c"] == json!(1)), "{result}");
    let spec = Spec::new("StatisticsContingencyVertical", &json!({}), 2).unwrap();
    let left = json!([["a", 1], ["b", "1"], ["c", quoted], ["d", 1]]);
    let right = json!([["a", "y"], ["b", "y"], ["c", "y"], ["d", "y"]]);
    let outputs = run_all(&spec, &[left, right], &mut rng).unwrap();
    assert_eq!(
        outputs[0]["result"]["table"],
        json!({"1": {"y": 2}, "\"1\"": {"y": 1}, "\"\\\"1\\\"\"": {"y": 1}}),
        "{}",
        outputs[0]
    );
}

#[test]
fn contingency_tables_have_every_cell_of_the_union() {
    let mut rng = ChaCha20Rng::seed_from_u64(25);
    let pool = pool();
    for parties in 2..=5 {
        for parameters in [json!({}), json!({"rows": pool, "columns": pool}), json!({"rows": pool})] {
            let inputs: Vec<Vec<Value>> = (0..parties)
                .map(|_| {
                    (0..(1 + rng.next_u64() % 10))
                        .map(|_| json!([pick(&mut rng, &pool[..5]), pick(&mut rng, &pool[3..])]))
                        .collect()
                })
                .collect();
            let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
            for pair in inputs.iter().flatten() {
                *want.entry((pair[0].to_string(), pair[1].to_string())).or_default() += 1;
            }
            let result = run(
                "StatisticsContingency",
                parameters.clone(),
                &inputs.iter().map(|v| json!(v)).collect::<Vec<_>>(),
                &mut rng,
            );
            let table = result["table"].as_object().unwrap();
            let rows_given = parameters.get("rows").is_some();
            let columns_given = parameters.get("columns").is_some();
            let distinct = |i: usize| {
                want.keys()
                    .map(|k| if i == 0 { &k.0 } else { &k.1 })
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
            };
            assert_eq!(table.len(), if rows_given { pool.len() } else { distinct(0) });
            let cells: usize = table.values().map(|row| row.as_object().unwrap().len()).sum();
            assert_eq!(
                cells,
                table.len() * if columns_given { pool.len() } else { distinct(1) }
            );
            let total: u64 = table
                .values()
                .flat_map(|row| row.as_object().unwrap().values())
                .map(|c| c.as_u64().unwrap())
                .sum();
            assert_eq!(total as usize, inputs.iter().map(Vec::len).sum::<usize>());
            let mode = &result["mode"];
            let best = want.values().max().unwrap();
            assert_eq!(want[&(mode[0].to_string(), mode[1].to_string())], *best, "{result}");
        }
    }
}

#[test]
fn categories_outside_the_parameter_and_bad_shapes_are_refused() {
    let spec = Spec::new("StatisticsFrequency", &json!({"categories": ["a", "b"]}), 2).unwrap();
    assert!(
        spec.machine(0, &json!(["a", "c"]))
            .unwrap_err()
            .to_string()
            .contains("\"c\" is not one of the categories")
    );
    assert!(
        spec.machine(0, &json!([["a"]]))
            .unwrap_err()
            .to_string()
            .contains("found a list")
    );
    let error = Spec::new("StatisticsFrequency", &json!({"categories": ["a", "a"]}), 2).unwrap_err();
    assert!(error.to_string().contains("lists \"a\" twice"), "{error}");
    let spec = Spec::new("StatisticsContingency", &json!({}), 2).unwrap();
    assert!(
        spec.machine(0, &json!([["a", "b", "c"]]))
            .unwrap_err()
            .to_string()
            .contains("pairs [row, column]")
    );
    let spec = Spec::new("StatisticsBivariate", &json!({"digits_after": 3}), 2).unwrap();
    assert!(
        spec.machine(0, &json!([[1, "2"]]))
            .unwrap_err()
            .to_string()
            .contains("found a string")
    );
    assert!(spec.machine(0, &json!([[1, 2e300]])).is_ok(), "any finite double");
    assert!(
        Spec::new("StatisticsUnivariate", &json!({"typo": 1}), 2)
            .unwrap_err()
            .to_string()
            .contains("unknown field")
    );
}

/// Issue 29's univariate cases, each against its exact value correctly rounded.
#[test]
fn univariate_edge_cases_are_exact() {
    let mut rng = ChaCha20Rng::seed_from_u64(27);
    let mut univariate = |inputs: &[Value]| run("StatisticsUnivariate", json!({}), inputs, &mut rng);
    // Centred on the exact mean: one ulp apart at 1.
    let r = univariate(&[json!([1.0]), json!([1.0000000000000002])]);
    assert_eq!(r["variance"], json!(2f64.powi(-105)), "{r}");
    assert_eq!(
        (r["skewness"].clone(), r["kurtosis"].clone()),
        (json!(0.0), json!(1.0)),
        "{r}"
    );
    // An empty party beside small magnitudes.
    let r = univariate(&[json!([1e-300, 1e-300]), json!([])]);
    assert_eq!(
        (r["variance_mle"].clone(), r["variance"].clone()),
        (json!(0.0), json!(0.0)),
        "{r}"
    );
    assert_eq!(
        (r["standard_deviation"].clone(), r["root_mean_square"].clone()),
        (json!(0.0), json!(1e-300))
    );
    assert!(r["kurtosis"].is_null(), "all values equal: {r}");
    let r = univariate(&[json!([1e-100, 2e-100]), json!([])]);
    assert_eq!(r["kurtosis"], json!(1.0), "{r}");
    let r = univariate(&[json!([1e-60, 2e-60, 4e-60]), json!([])]);
    // Deviations −4/3, −1/3, 5/3 (in units of 1e-60, which are not exactly 1:2:4 in binary).
    let h = r["hyper_flatness"].as_f64().unwrap();
    assert!((h - 177498.0 / 74088.0).abs() < 1e-14, "{r}");
    // Subnormals.
    let r = univariate(&[json!([5e-324]), json!([1.0])]);
    assert_eq!(
        (r["variance_mle"].clone(), r["variance"].clone()),
        (json!(0.25), json!(0.5)),
        "{r}"
    );
    // Harmonic means beyond the double range of 1/x.
    let q = |x: f64| exact(x);
    let r = univariate(&[json!([5e-324, 1.0]), json!([2.0])]);
    let want = q(3.0) / (q(1.0) / q(5e-324) + q(1.5));
    assert_eq!(r["harmonic_mean"], json!(to_f64(&want)), "{r}");
    assert_eq!(r["harmonic_mean"], json!(1.5e-323), "{r}");
    let r = univariate(&[json!([1e-308, 1e-308, 1e-308]), json!([2.0])]);
    let want = q(4.0) / (q(3.0) / q(1e-308) + q(0.5));
    assert_eq!(r["harmonic_mean"], json!(to_f64(&want)), "{r}");
    // A variance beyond the double range, and its square root within.
    let r = univariate(&[json!([1e300, 3e300]), json!([])]);
    assert!(r["variance"].is_null() && r["variance_mle"].is_null(), "{r}");
    let half_spread = (q(3e300) - q(1e300)) / q(2.0);
    assert_eq!(r["standard_deviation_mle"], json!(to_f64(&half_spread)), "{r}");
    assert_eq!(r["root_mean_square_deviation"], json!(to_f64(&half_spread)), "{r}");
    assert_eq!(r["standard_error_of_sample_mean"], json!(to_f64(&half_spread)), "{r}");
    let cv = &half_spread / ((q(3e300) + q(1e300)) / q(2.0));
    assert_eq!(r["coefficient_of_variation_mle"], json!(to_f64(&cv)), "{r}");
    let sd = sqrt_to_f64(&(&half_spread * &half_spread * q(2.0)));
    assert_eq!(r["standard_deviation"], json!(sd), "{r}");
}

/// Issue 29's bivariate cases.
#[test]
fn bivariate_edge_cases_are_exact() {
    let mut rng = ChaCha20Rng::seed_from_u64(28);
    let r = run(
        "StatisticsBivariate",
        json!({}),
        &[json!([[1.0, 1.0]]), json!([[1.0000000000000002, 2.0]])],
        &mut rng,
    );
    assert_eq!(r["correlation_coefficient"], json!(1.0), "{r}");
    assert_eq!(r["regression_slope"], json!(2f64.powi(52)), "{r}");
    let r = run(
        "StatisticsBivariate",
        json!({}),
        &[json!([[1e-200, 1e-200], [2e-200, 3e-200]]), json!([])],
        &mut rng,
    );
    let q = |x: f64| exact(x);
    let slope = (q(3e-200) - q(1e-200)) / (q(2e-200) - q(1e-200));
    assert_eq!(r["regression_slope"], json!(to_f64(&slope)), "{r}");
    let intercept = q(1e-200) - &slope * q(1e-200);
    assert_eq!(r["regression_intercept"], json!(to_f64(&intercept)), "{r}");
    let through_origin =
        (q(1e-200) * q(1e-200) + q(2e-200) * q(3e-200)) / (q(1e-200) * q(1e-200) + q(2e-200) * q(2e-200));
    assert_eq!(r["regression_slope_only"], json!(to_f64(&through_origin)), "{r}");
}
