//! SecureSum against direct sums, the reference's recorded vectors, and a uniformity test of
//! the shares. Pure: no I/O but reading the vector files.

use fsc_simon::additive_sum::{AdditiveSum, SumMessage};
use fsc_simon::fixed_point::{self, PyNumber};
use fsc_simon::simulate::run_all;
use fsc_simon::z2k::Z256;
use fsc_simon::{EngineError, Io, Microprotocol, Spec};
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

#[test]
fn random_inputs_sum_like_a_direct_sum_for_2_to_7_parties() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for parties in 2..=7 {
        for _ in 0..20 {
            let values: Vec<i64> = (0..parties)
                .map(|_| (rng.next_u64() % 2_000_001) as i64 - 1_000_000)
                .collect();
            let inputs: Vec<Value> = values.iter().map(|v| json!(v)).collect();
            let outputs = run_all(&secure_sum(parties, json!({})), &inputs, &mut rng).unwrap();
            let want = values.iter().sum::<i64>() as f64;
            for output in outputs {
                assert_eq!(
                    output,
                    json!({"inputs": parties, "result": {"sum": want, "samples": parties}})
                );
            }
        }
    }
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
    let mut machine = spec.machine(0, &json!(1)).unwrap();
    machine.start(&mut rng).unwrap();
    let share = serde_json::to_vec(&SumMessage::Share(vec![Z256::ZERO; 2])).unwrap();
    machine.receive(1, &share, &mut rng).unwrap();
    assert!(matches!(
        machine.receive(1, &share, &mut rng),
        Err(EngineError::Protocol(_))
    ));
    let short = serde_json::to_vec(&SumMessage::Share(vec![Z256::ZERO])).unwrap();
    assert!(matches!(
        machine.receive(2, &short, &mut rng),
        Err(EngineError::Protocol(_))
    ));
    assert!(matches!(
        machine.receive(2, b"garbage", &mut rng),
        Err(EngineError::Protocol(_))
    ));
    assert!(matches!(
        machine.receive(0, &share, &mut rng),
        Err(EngineError::Protocol(_))
    ));
}

/// The share a party sends is uniform in Z_2^256 whatever the input: over many runs, every bit
/// is set about half the time and the top byte is uniform (chi-square), for a zero and a huge input.
#[test]
fn each_share_alone_is_uniform() {
    const RUNS: usize = 20_000;
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    for input in [
        BigInt::from(0),
        "1000000000000000000000000000000000000000000".parse::<BigInt>().unwrap(),
    ] {
        let mut ones = [0usize; 256];
        let mut top_byte = [0usize; 256];
        for _ in 0..RUNS {
            let mut sum = AdditiveSum::new(vec![Z256::from_bigint(&input)], 3);
            let mut io = Io::new(0, 3, &mut rng);
            sum.start(&mut io).unwrap();
            let (_, SumMessage::Share(share)) = io.into_outgoing().into_iter().find(|(to, _)| *to == 2).unwrap() else {
                panic!("party 0 sends a share to party 2");
            };
            let bytes = share[0].to_le_bytes();
            for (bit, count) in ones.iter_mut().enumerate() {
                *count += ((bytes[bit / 8] >> (bit % 8)) & 1) as usize;
            }
            top_byte[bytes[31] as usize] += 1;
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
        let chi_square: f64 = top_byte.iter().map(|&c| (c as f64 - expected).powi(2) / expected).sum();
        // 255 degrees of freedom: mean 255, standard deviation about 22.6.
        assert!(chi_square < 255.0 + 5.0 * 22.6, "top byte chi-square {chi_square}");
    }
}
