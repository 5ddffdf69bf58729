//! SecureSum against direct sums, the reference's recorded vectors, and a uniformity test of
//! the masked vectors. Pure: no I/O but reading the vector files.

use fsc_simon::fixed_point::{self, PyNumber};
use fsc_simon::masks::Instance;
use fsc_simon::simulate::{run_all, run_recorded};
use fsc_simon::sum::additive_sum::{AdditiveSum, SumMessage, messages_per_sum};
use fsc_simon::z2k::Z256;
use fsc_simon::{EngineError, Io, Masks, Microprotocol, Spec};
use num_bigint::BigInt;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::{Value, json};
use std::path::PathBuf;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../vectors")
}

fn load(name: &str) -> Value {
    let path = vectors_dir().join(format!("{name}.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn secure_sum(parties: usize, parameters: Value) -> Spec {
    Spec::new("SecureSum", &parameters, parties).unwrap()
}

/// All-to-all below five parties, through the aggregator from five: the same sums, and the
/// documented number of messages.
#[test]
fn random_inputs_sum_like_a_direct_sum_for_2_to_20_parties() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for parties in 2..=20 {
        for _ in 0..10 {
            let values: Vec<i64> = (0..parties)
                .map(|_| (rng.next_u64() % 2_000_001) as i64 - 1_000_000)
                .collect();
            let inputs: Vec<Value> = values.iter().map(|v| json!(v)).collect();
            let transcript = run_recorded(&secure_sum(parties, json!({})), &inputs, &mut rng).unwrap();
            assert_eq!(transcript.deliveries().count(), messages_per_sum(parties));
            let want = values.iter().sum::<i64>() as f64;
            for output in transcript.outputs {
                assert_eq!(
                    output,
                    json!({"inputs": parties, "result": {"sum": want, "samples": parties}})
                );
            }
        }
    }
    assert_eq!(messages_per_sum(4), 12);
    assert_eq!(messages_per_sum(5), 8);
}

#[test]
fn list_inputs_sum_all_values_and_count_them() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let inputs = [json!([1.5, 2.5, [3]]), json!([]), json!(10)];
    let outputs = run_all(&secure_sum(3, json!({"digits_after": 3})), &inputs, &mut rng).unwrap();
    assert_eq!(outputs[2], json!({"inputs": 3, "result": {"sum": 17.0, "samples": 4}}));
}

#[test]
fn the_tutorial_sum_is_85() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let outputs = run_all(&secure_sum(3, Value::Null), &[json!(19), json!(5), json!(61)], &mut rng).unwrap();
    assert!(
        outputs
            .iter()
            .all(|o| *o == json!({"inputs": 3, "result": {"samples": 3, "sum": 85.0}}))
    );
}

/// Every recorded `secure_sum_*` vector: the reference's exact result, or a clean input error
/// where the reference crashed (overflow, strings).
#[test]
fn every_secure_sum_vector_gives_the_reference_result() {
    let mut checked = 0;
    for entry in std::fs::read_dir(vectors_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.starts_with("secure_sum_") {
            continue;
        }
        let vector = load(name.trim_end_matches(".json"));
        let inputs = vector["inputs"].as_array().unwrap().clone();
        let spec = secure_sum(inputs.len(), vector["parameters"].clone());
        let mut rng = ChaCha20Rng::seed_from_u64(checked);
        let outcome = run_all(&spec, &inputs, &mut rng);
        if vector["status"] == "ok" {
            let outputs = outcome.unwrap_or_else(|e| panic!("{name}: {e}"));
            for output in outputs {
                // Compare as doubles, bit for bit (JSON spelling of 1e30 differs between Python and Rust).
                let want = vector["result"]["result"]["sum"].as_f64().unwrap();
                let got = output["result"]["sum"].as_f64().unwrap();
                assert_eq!(got.to_bits(), want.to_bits(), "{name}: got {got}, want {want}");
                assert_eq!(output["inputs"], vector["result"]["inputs"], "{name}");
                assert_eq!(output["result"]["samples"], json!(inputs.len()), "{name}");
            }
        } else {
            assert!(
                matches!(outcome, Err(EngineError::InvalidInput(_))),
                "{name}: {outcome:?}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 14, "all secure_sum vectors were found");
}

#[test]
fn fixed_point_encoding_matches_the_reference() {
    let vector = load("fixed_point_encoding_secure_sum");
    let encodings = vector["encodings"].as_array().unwrap();
    assert!(encodings.len() >= 10);
    for case in encodings {
        let value = PyNumber::from_json(case["value"].as_number().unwrap()).unwrap();
        for (digits, key) in [(12, "int(v*10**12)"), (2, "int(v*10**2)")] {
            let want: BigInt = case[key].as_str().unwrap().parse().unwrap();
            assert_eq!(
                fixed_point::encode(&value, digits).unwrap(),
                want,
                "{} at {digits} digits",
                case["value"]
            );
        }
        let encoded = fixed_point::encode(&value, 12).unwrap();
        let round_trip = case["roundtrip int(v*10**12)/10**12"].as_f64().unwrap();
        assert_eq!(
            fixed_point::decode(&encoded, 12).to_bits(),
            round_trip.to_bits(),
            "{}",
            case["value"]
        );
    }
}

#[test]
fn bad_definitions_and_inputs_are_rejected_before_anything_is_sent() {
    assert!(matches!(
        Spec::new("Nope", &json!({}), 3),
        Err(EngineError::UnknownMicroprotocol(_))
    ));
    assert!(matches!(
        Spec::new("SecureSum", &json!({"digit_after": 2}), 3),
        Err(EngineError::InvalidParameters { .. })
    ));
    assert!(matches!(
        Spec::new("SecureSum", &json!({"digits_after": -1}), 3),
        Err(EngineError::InvalidParameters { .. })
    ));
    assert!(matches!(
        Spec::new("SecureSum", &json!([]), 3),
        Err(EngineError::InvalidParameters { .. })
    ));
    assert!(matches!(
        Spec::new("SecureSum", &json!({}), 1),
        Err(EngineError::InvalidPartyCount(1))
    ));
    let spec = secure_sum(3, json!({}));
    for input in [json!("5"), json!(null), json!([1, "x"]), json!(1e300), json!({"a": 1})] {
        assert!(
            matches!(spec.machine(0, &input), Err(EngineError::InvalidInput(_))),
            "{input}"
        );
    }
    // Defaults are filled in, so `{}` and explicit defaults agree.
    assert_eq!(
        secure_sum(3, json!({})),
        secure_sum(3, json!({"digits_after": 12, "digits_before": 12}))
    );
}

#[test]
fn duplicate_and_malformed_messages_are_protocol_errors() {
    let spec = secure_sum(3, json!({}));
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let masks = Masks::dealt(3, &mut rng);
    let mut machine = spec.machine(0, &json!(1)).unwrap();
    machine.start(&mut rng, &masks[0]).unwrap();
    let masked =
        |values: Vec<Z256>, agreement: u64| serde_json::to_vec(&SumMessage::Masked { values, agreement }).unwrap();
    let agreement = masks[0].agreement();
    let good = masked(vec![Z256::ZERO; 2], agreement);
    machine.receive(1, &good, &mut rng, &masks[0]).unwrap();
    for (from, bytes) in [
        (1, good.clone()),
        (2, masked(vec![Z256::ZERO], agreement)),
        (2, masked(vec![Z256::ZERO; 2], agreement ^ 1)),
        (2, serde_json::to_vec(&SumMessage::Total(vec![Z256::ZERO; 2])).unwrap()),
        (2, b"garbage".to_vec()),
        (0, good.clone()),
    ] {
        assert!(
            matches!(
                machine.receive(from, &bytes, &mut rng, &masks[0]),
                Err(EngineError::Protocol(_))
            ),
            "from {from}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    // Without mask seeds a sum refuses to start rather than send an unmasked input.
    let mut machine = spec.machine(0, &json!(1)).unwrap();
    assert!(machine.start(&mut rng, &Masks::default()).is_err());
}

/// Party 0's masked vector, as seen by the coalition of parties 2 and 3 (the aggregator in a
/// bigger sum sees no more), after removing the masks of the pairs the coalition holds: it still
/// misses the pair (0, 1), and what it sees is uniform in Z_2^256 whatever the input. Over many
/// computations every bit is set about half the time and the top and bottom bytes are uniform
/// (chi-square), for a zero and a huge input. With the missing seed, the input comes out exactly.
#[test]
fn a_masked_vector_is_uniform_to_a_coalition_missing_one_pair() {
    const RUNS: usize = 20_000;
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let instance = Instance { sequence: 0, round: 7 };
    for input in [
        BigInt::from(0),
        "1000000000000000000000000000000000000000000".parse::<BigInt>().unwrap(),
    ] {
        let x = Z256::from_bigint(&input);
        let mut ones = [0usize; 256];
        let mut top_byte = [0usize; 256];
        let mut bottom_byte = [0usize; 256];
        for _ in 0..RUNS {
            let masks = Masks::dealt(4, &mut rng);
            let mut sum = AdditiveSum::new(vec![x], 4, instance);
            let mut io = Io::with_masks(0, 4, &mut rng, &masks[0]);
            sum.start(&mut io).unwrap();
            let sent = io.into_outgoing();
            assert_eq!(sent.len(), 3, "all-to-all among four");
            let (_, SumMessage::Masked { values, .. }) = &sent[0] else {
                panic!("party 0 sends its masked vector");
            };
            let seen = values[0] - masks[2].mask::<4>(0, instance, 1)[0] - masks[3].mask::<4>(0, instance, 1)[0];
            assert_eq!(seen - masks[1].mask::<4>(0, instance, 1)[0], x, "all pairs unmask");
            let bytes = seen.to_le_bytes();
            for (bit, count) in ones.iter_mut().enumerate() {
                *count += ((bytes[bit / 8] >> (bit % 8)) & 1) as usize;
            }
            top_byte[bytes[31] as usize] += 1;
            bottom_byte[bytes[0] as usize] += 1;
        }
        // 5 standard deviations of a binomial(RUNS, 1/2).
        let tolerance = 5.0 * (RUNS as f64 * 0.25).sqrt();
        for (bit, count) in ones.iter().enumerate() {
            assert!(
                (*count as f64 - RUNS as f64 / 2.0).abs() < tolerance,
                "bit {bit} set {count} times"
            );
        }
        let expected = RUNS as f64 / 256.0;
        for (name, histogram) in [("top", top_byte), ("bottom", bottom_byte)] {
            let chi_square: f64 = histogram
                .iter()
                .map(|&c| (c as f64 - expected).powi(2) / expected)
                .sum();
            // 255 degrees of freedom: mean 255, standard deviation about 22.6.
            assert!(chi_square < 255.0 + 5.0 * 22.6, "{name} byte chi-square {chi_square}");
        }
    }
}

/// The total every party opens: the sum of each sender's masked vector (all-to-all below five
/// parties, so each is delivered n − 1 times).
fn opened_total(transcript: &fsc_simon::simulate::Transcript) -> Vec<BigInt> {
    let mut vectors = std::collections::BTreeMap::new();
    for (from, _, bytes) in transcript.deliveries() {
        let message: Value = serde_json::from_slice(bytes).unwrap();
        let values: Vec<Z256> = serde_json::from_value(message["Masked"]["values"].clone()).unwrap();
        vectors.insert(from, values);
    }
    let mut total = [Z256::ZERO; 2];
    for values in vectors.values() {
        for (t, v) in total.iter_mut().zip(values) {
            *t += *v;
        }
    }
    total.iter().map(|t| t.to_signed_bigint()).collect()
}

/// Issue 20.3: by default the exact total reveals B's low digits beside C's huge value (the
/// reference's semantics, which the vectors pin); with `bound`, each contribution is rounded to
/// a grid below the bound's precision and the opened total no longer moves with them.
#[test]
fn a_bound_rounds_contributions_to_a_public_grid() {
    let inputs = |b: f64| [json!(5), json!(b), json!(3.1e25)];
    let totals = |parameters: Value, b: f64| {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let transcript = run_recorded(&secure_sum(3, parameters), &inputs(b), &mut rng).unwrap();
        (
            opened_total(&transcript),
            transcript.outputs[0]["result"]["sum"].as_f64().unwrap(),
        )
    };
    let (exact_a, sum_a) = totals(json!({}), 12345.678901);
    let (exact_b, sum_b) = totals(json!({}), 12345.678902);
    assert_eq!(sum_a, sum_b, "the output does not show B's change");
    assert_ne!(exact_a, exact_b, "the exact total does");
    let moved = &exact_b[0] - &exact_a[0];
    assert!(
        (moved - BigInt::from(1_000_000)).magnitude() < &10u32.into(),
        "by 1e-6, in 1e-12 units"
    );
    let bounded = json!({"bound": 1e26});
    let (rounded_a, bounded_a) = totals(bounded.clone(), 12345.678901);
    let (rounded_b, _) = totals(bounded.clone(), 12345.678902);
    assert_eq!(rounded_a, rounded_b, "with a bound, neither does the opened total");
    // Within 2^−58 of the bound of the exact sum.
    assert!(
        (bounded_a - sum_a).abs() <= 1e26 * 2f64.powi(-58),
        "{bounded_a} vs {sum_a}"
    );
    // A party beyond the bound, and bounds that are no bound, are refused.
    let spec = secure_sum(3, bounded);
    assert!(matches!(
        spec.machine(2, &json!(2e26)),
        Err(EngineError::InvalidInput(_))
    ));
    for bound in [json!(0), json!(-1.0), json!("1")] {
        assert!(
            matches!(
                Spec::new("SecureSum", &json!({"bound": bound}), 3),
                Err(EngineError::InvalidParameters { .. })
            ),
            "{bound}"
        );
    }
}
