//! MinimumMaximum, KthElement and SecureMedian against a plaintext sort, for 2 to 5 parties on
//! random inputs (ints, floats with many decimals, negatives, duplicates, an empty party), and on
//! adversarial doubles, with the number of rounds each takes. Pure: no I/O.

use fsc_simon::order::doubles as order;
use fsc_simon::simulate::{Transcript, run_recorded};
use fsc_simon::{EngineError, ProtocolError, Spec};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::{Value, json};

/// A random party input: ints and many-decimal floats, negatives, repeated values.
fn random_values(rng: &mut ChaCha20Rng, max_len: u64) -> Vec<Value> {
    let len = rng.next_u64() % (max_len + 1);
    let mut values: Vec<Value> = Vec::new();
    for _ in 0..len {
        let value = match rng.next_u64() % 4 {
            0 => json!((rng.next_u64() % 2001) as i64 - 1000),
            1 if !values.is_empty() => values[(rng.next_u64() % values.len() as u64) as usize].clone(),
            _ => json!((rng.next_u64() as f64 / u64::MAX as f64 - 0.5) * 2000.0),
        };
        values.push(value);
    }
    values
}

fn as_f64(value: &Value) -> f64 {
    value.as_f64().unwrap()
}

/// The number of rounds a run took: one more than the highest round index in any message.
fn rounds(transcript: &Transcript) -> u64 {
    fn highest(value: &Value) -> Option<u64> {
        match value {
            Value::Object(fields) => fields
                .iter()
                .filter_map(|(k, v)| if k == "round" { v.as_u64() } else { highest(v) })
                .max(),
            _ => None,
        }
    }
    transcript
        .deliveries()
        .filter_map(|(_, _, bytes)| highest(&serde_json::from_slice(bytes).unwrap()))
        .max()
        .map_or(0, |r| r + 1)
}

fn run(
    protocol: &str,
    parameters: Value,
    inputs: &[Value],
    rng: &mut ChaCha20Rng,
) -> Result<(Value, u64), EngineError> {
    let spec = Spec::new(protocol, &parameters, inputs.len()).unwrap();
    let transcript = run_recorded(&spec, inputs, rng)?;
    let outputs = &transcript.outputs;
    assert!(
        outputs.windows(2).all(|w| w[0] == w[1]),
        "parties disagree: {outputs:?}"
    );
    Ok((outputs[0]["result"].clone(), rounds(&transcript)))
}

fn sorted(inputs: &[Vec<Value>]) -> Vec<f64> {
    let mut all: Vec<f64> = inputs.iter().flatten().map(as_f64).collect();
    all.sort_by_key(|&x| order::key(x));
    all
}

#[test]
fn minimum_maximum_match_a_sort_and_keep_the_type() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    for parties in 2..=5 {
        for _ in 0..3 {
            let mut inputs: Vec<Vec<Value>> = (0..parties).map(|_| random_values(&mut rng, 12)).collect();
            inputs[0].push(json!(1));
            let all = sorted(&inputs);
            let (result, rounds) = run(
                "MinimumMaximum",
                json!({}),
                &inputs.iter().map(|v| json!(v)).collect::<Vec<_>>(),
                &mut rng,
            )
            .unwrap();
            assert_eq!(result["samples"], json!(all.len()));
            assert_eq!(as_f64(&result["minimum"]), all[0]);
            assert_eq!(as_f64(&result["maximum"]), *all.last().unwrap());
            for (key, extreme) in [("minimum", all[0]), ("maximum", *all.last().unwrap())] {
                let is_int = inputs.iter().flatten().any(|v| v.is_i64() && as_f64(v) == extreme);
                assert_eq!(result[key].is_i64(), is_int, "{key} of {inputs:?}: {result}");
            }
            assert_eq!(rounds, 9, "8 bisection rounds and one for the types");
        }
    }
}

#[test]
fn kth_element_matches_a_sort_for_every_rank() {
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    for parties in 2..=5 {
        let inputs: Vec<Vec<Value>> = (0..parties).map(|_| random_values(&mut rng, 6)).collect();
        let all = sorted(&inputs);
        for rank in 1..=all.len() {
            let input = |values: &Vec<Value>| json!([{"array": values, "rank": rank, "lower_bound": -1000, "upper_bound": 1000}]);
            let inputs: Vec<Value> = inputs.iter().map(input).collect();
            let (result, rounds) = run("KthElement", json!({}), &inputs, &mut rng).unwrap();
            assert_eq!(as_f64(&result["item"]), all[rank - 1], "rank {rank}");
            assert_eq!(result["samples"], json!(all.len()));
            assert!(rounds <= 16, "{rounds} rounds");
        }
    }
}

#[test]
fn kth_element_refuses_disagreeing_ranks_and_ranks_beyond_the_count() {
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let input = |rank: u64| json!([{"array": [1, 2], "rank": rank, "lower_bound": 0, "upper_bound": 9}]);
    let error = run("KthElement", json!({}), &[input(1), input(2)], &mut rng).unwrap_err();
    assert!(
        matches!(&error, EngineError::Protocol(ProtocolError::Failed(m)) if m.contains("disagree")),
        "{error}"
    );
    let error = run("KthElement", json!({}), &[input(5), input(5)], &mut rng).unwrap_err();
    assert!(error.to_string().contains("rank 5 is beyond the 4 values"), "{error}");
    let spec = Spec::new("KthElement", &json!({}), 2).unwrap();
    let bad = json!([{"array": [1], "rank": 0, "lower_bound": 0, "upper_bound": 9}]);
    assert!(
        spec.machine(0, &bad)
            .unwrap_err()
            .to_string()
            .contains("\"rank\" must be a positive integer")
    );
}

/// The plaintext median, as the protocol defines it.
fn median(all: &[f64]) -> f64 {
    let n = all.len();
    if n % 2 == 1 {
        all[n / 2]
    } else {
        let (a, b) = (all[n / 2 - 1], all[n / 2]);
        if (a + b).is_finite() {
            (a + b) / 2.0
        } else {
            a / 2.0 + b / 2.0
        }
    }
}

#[test]
fn the_median_matches_a_sort_for_2_to_5_parties() {
    let mut rng = ChaCha20Rng::seed_from_u64(14);
    for parties in 2..=5 {
        for _ in 0..6 {
            let mut inputs: Vec<Vec<Value>> = (0..parties).map(|_| random_values(&mut rng, 15)).collect();
            inputs[1].push(json!(0.5));
            if parties > 2 {
                inputs[2].clear();
            }
            let all = sorted(&inputs);
            let (result, rounds) = run(
                "SecureMedian",
                json!({}),
                &inputs.iter().map(|v| json!(v)).collect::<Vec<_>>(),
                &mut rng,
            )
            .unwrap();
            assert_eq!(as_f64(&result["median"]), median(&all), "{inputs:?}");
            assert_eq!(rounds, 16);
        }
    }
}

#[test]
fn the_median_of_adversarial_doubles_is_exact_within_64_rounds() {
    let mut rng = ChaCha20Rng::seed_from_u64(15);
    let one_ulp_above = f64::from_bits(1.0f64.to_bits() + 1);
    let cases: Vec<Vec<Vec<f64>>> = vec![
        vec![vec![5e-324, -5e-324], vec![0.0, -0.0, f64::MIN_POSITIVE]],
        vec![
            vec![1.0, one_ulp_above],
            vec![one_ulp_above, f64::from_bits(one_ulp_above.to_bits() + 1)],
        ],
        vec![vec![1e300, -1e300], vec![1e300], vec![-1e300]],
        vec![vec![f64::MAX, f64::MAX], vec![-f64::MAX]],
        vec![vec![0.57, 0.9], vec![0.1]],
        vec![vec![2.2250738585072014e-308, 2.225073858507201e-308], vec![]],
    ];
    for case in cases {
        let all = {
            let mut all: Vec<f64> = case.iter().flatten().copied().collect();
            all.sort_by_key(|&x| order::key(x));
            all
        };
        for bits in [1, 4, 8] {
            let inputs: Vec<Value> = case.iter().map(|v| json!(v)).collect();
            let (result, rounds) = run("SecureMedian", json!({"bits_per_round": bits}), &inputs, &mut rng).unwrap();
            assert_eq!(
                as_f64(&result["median"]).to_bits(),
                median(&all).to_bits(),
                "{case:?} with {bits} bits"
            );
            assert!(rounds <= 64, "{rounds} rounds");
            assert_eq!(rounds, 64u64.div_ceil(bits));
        }
    }
}

#[test]
fn bad_inputs_are_refused_before_anything_is_sent() {
    let spec = Spec::new("SecureMedian", &json!({}), 2).unwrap();
    for (input, why) in [
        (json!(["1"]), "found a string"),
        (json!([9007199254740993u64]), "no exact double"),
        (json!([1, null]), "found null"),
    ] {
        let error = spec.machine(0, &input).unwrap_err().to_string();
        assert!(error.contains(why), "{input}: {error}");
    }
    let error = Spec::new("SecureMedian", &json!({"bits_per_round": 9}), 2)
        .unwrap_err()
        .to_string();
    assert!(error.contains("bits_per_round must be between 1 and 8"), "{error}");
    let spec = Spec::new("MinimumMaximum", &json!({}), 2).unwrap();
    let error = spec
        .machine(0, &json!([{"minimum": 3, "maximum": 1}]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("minimum 3 is above maximum 1"), "{error}");
}
