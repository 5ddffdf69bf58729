//! SecureSum against direct sums, the reference's recorded vectors, and a uniformity test of
//! the masked vectors. Pure: no I/O but reading the vector files.

use fsc_simon::fixed_point::{self, PyNumber};
use fsc_simon::masks::Instance;
use fsc_simon::simulate::{run_all, run_recorded};
use fsc_simon::statistics::exact::{exact, mantissa_times_power_of_two, to_f64};
use fsc_simon::sum::additive_sum::{AdditiveSum, SumMessage, messages_per_sum};
use fsc_simon::z2k::{Z256, ZWide, Zk};
use fsc_simon::{EngineError, Io, Masks, Microprotocol, Spec};
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::Signed;
use proptest::prelude::*;
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
        // The reference's semantics, as the federatedsecure API asks for them.
        let mut parameters = vector["parameters"].clone();
        parameters
            .as_object_mut()
            .unwrap()
            .entry("digits_after")
            .or_insert(json!(12));
        let spec = secure_sum(inputs.len(), parameters);
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
    assert!(matches!(
        Spec::new("SecureSum", &json!({"digits_after": 41}), 3),
        Err(EngineError::InvalidParameters { .. })
    ));
    // Beyond ±2^240 in fixed point, beyond ±2^1100 (about 1.36e331) exactly.
    let beyond: Value = serde_json::from_str(&format!("1{}", "0".repeat(332))).unwrap();
    let within: Value = serde_json::from_str(&format!("-1{}", "0".repeat(330))).unwrap();
    for (parameters, bad, good) in [
        (json!({"digits_after": 12}), json!(1e300), json!(1e59)),
        (json!({}), beyond.clone(), json!([1e300, within, f64::MAX, 5e-324])),
        (json!({}), json!([f64::MAX, beyond, -f64::MAX]), json!(-1e300)),
    ] {
        let spec = secure_sum(3, parameters);
        for input in [json!("5"), json!(null), json!([1, "x"]), json!({"a": 1}), bad] {
            let error = spec.machine(0, &input).unwrap_err();
            assert!(matches!(error, EngineError::InvalidInput(_)), "{input}: {error}");
        }
        assert!(spec.machine(0, &good).is_ok(), "{good}");
    }
    let error = secure_sum(3, json!({})).machine(0, &beyond).unwrap_err();
    assert!(error.to_string().contains("±2^1100"), "{error}");
    // Defaults are filled in, so `{}` and explicit defaults agree; `digits_before` is kept in
    // fixed point and dropped in exact mode, where an absent `digits_after` stays absent.
    assert_eq!(
        secure_sum(3, json!({"digits_after": 12})),
        secure_sum(3, json!({"digits_after": 12, "digits_before": 12}))
    );
    assert_eq!(secure_sum(3, json!({})), secure_sum(3, json!({"digits_before": 5})));
    assert_eq!(secure_sum(3, json!({"digits_before": 1})).parameters_json(), json!({}));
    assert_eq!(
        secure_sum(3, json!({"digits_after": 2})).parameters_json(),
        json!({"digits_after": 2, "digits_before": 12})
    );
    assert_eq!(
        secure_sum(3, json!({"bound": 1e6, "digits_after": null})).parameters_json(),
        json!({"bound": 1e6})
    );
}

#[test]
fn duplicate_and_malformed_messages_are_protocol_errors() {
    let spec = secure_sum(3, json!({"digits_after": 12}));
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
    // An exact sum (in the wide ring) refuses a vector of the narrow one, and takes a wide one.
    let mut machine = secure_sum(3, json!({})).machine(0, &json!(1)).unwrap();
    machine.start(&mut rng, &masks[0]).unwrap();
    assert!(matches!(
        machine.receive(1, &good, &mut rng, &masks[0]),
        Err(EngineError::Protocol(_))
    ));
    let wide = serde_json::to_vec(&SumMessage::Masked {
        values: vec![ZWide::ZERO; 2],
        agreement,
    })
    .unwrap();
    machine.receive(2, &wide, &mut rng, &masks[0]).unwrap();
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
/// parties, so each is delivered n − 1 times), in Z_2^(64·L).
fn opened_total<const L: usize>(transcript: &fsc_simon::simulate::Transcript) -> Vec<BigInt> {
    let mut vectors = std::collections::BTreeMap::new();
    for (from, _, bytes) in transcript.deliveries() {
        let message: Value = serde_json::from_slice(bytes).unwrap();
        let values: Vec<Zk<L>> = serde_json::from_value(message["Masked"]["values"].clone()).unwrap();
        vectors.insert(from, values);
    }
    let mut total = [Zk::<L>::ZERO; 2];
    for values in vectors.values() {
        for (t, v) in total.iter_mut().zip(values) {
            *t += *v;
        }
    }
    total.iter().map(|t| t.to_signed_bigint()).collect()
}

/// Issue 20.3: without a bound the opened total reveals B's low digits beside C's huge value
/// (in fixed point the reference's semantics, which the vectors pin; in exact mode every bit of
/// B's double); with `bound`, each contribution is rounded to a grid below the bound's precision
/// and the opened total no longer moves with them.
#[test]
fn a_bound_rounds_contributions_to_a_public_grid() {
    let inputs = |b: f64| [json!(5), json!(b), json!(3.1e25)];
    let run = |parameters: &Value, b: f64| {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        run_recorded(&secure_sum(3, parameters.clone()), &inputs(b), &mut rng).unwrap()
    };
    let sum = |t: &fsc_simon::simulate::Transcript| t.outputs[0]["result"]["sum"].as_f64().unwrap();
    let (b, b_next) = (12345.678901, 12345.678902);
    for (unbounded, bounded, moved) in [
        // Fixed point: by 1e-6, in units of 1e-12.
        (
            json!({"digits_after": 12}),
            json!({"digits_after": 12, "bound": 1e26}),
            BigInt::from(1_000_000),
        ),
        // Exact: by the difference of the two doubles, in units of 2^-1100.
        (
            json!({}),
            json!({"bound": 1e26}),
            ((exact(b_next) - exact(b)) * mantissa_times_power_of_two(BigInt::from(1), 1100)).to_integer(),
        ),
    ] {
        let wide = unbounded.get("digits_after").is_none();
        let opened = |t: &_| {
            if wide {
                opened_total::<{ fsc_simon::z2k::WIDE_LIMBS }>(t)
            } else {
                opened_total::<4>(t)
            }
        };
        let (a, a_next) = (run(&unbounded, b), run(&unbounded, b_next));
        assert_eq!(
            sum(&a),
            sum(&a_next),
            "{unbounded}: the output does not show B's change"
        );
        let shift = &opened(&a_next)[0] - &opened(&a)[0];
        if wide {
            assert_eq!(shift, moved, "{unbounded}: the exact total moves by exactly B's change");
        } else {
            assert!((shift - &moved).magnitude() < &10u32.into(), "{unbounded}");
        }
        let (r, r_next) = (run(&bounded, b), run(&bounded, b_next));
        assert_eq!(
            opened_total::<4>(&r),
            opened_total::<4>(&r_next),
            "{bounded}: with a bound, neither does the opened total"
        );
        // Within 2^−58 of the bound of the unrounded sum.
        assert!(
            (sum(&r) - sum(&a)).abs() <= 1e26 * 2f64.powi(-58),
            "{bounded}: {} vs {}",
            sum(&r),
            sum(&a)
        );
        // A party beyond the bound is refused.
        let spec = secure_sum(3, bounded.clone());
        assert!(matches!(
            spec.machine(2, &json!(2e26)),
            Err(EngineError::InvalidInput(_))
        ));
    }
    // Bounds that are no bound are refused.
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

/// A sum a user checks by hand: exact mode gives the correctly rounded sum of the doubles (as
/// numpy and StatisticsUnivariate do), fixed point the reference's truncated one.
#[test]
fn exact_mode_gives_the_sum_a_user_expects() {
    let inputs = [json!(42.7), json!(32.3), json!(25.9)];
    let sum = |parameters: Value, inputs: &[Value]| {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        run_all(&secure_sum(inputs.len(), parameters), inputs, &mut rng).map(|outputs| {
            assert!(outputs.windows(2).all(|w| w[0] == w[1]), "{outputs:?}");
            outputs[0]["result"].clone()
        })
    };
    assert_eq!(sum(json!({}), &inputs).unwrap(), json!({"sum": 100.9, "samples": 3}));
    assert_eq!(
        sum(json!({"digits_after": 12}), &inputs).unwrap(),
        json!({"sum": 100.899999999999, "samples": 3})
    );
    // Each value exactly: 1e16 + 1 + 1 is 1e16 + 2, and an int no double equals stays exact.
    let parts = [json!([1e16, 1]), json!(1), json!([])];
    assert_eq!(sum(json!({}), &parts).unwrap()["sum"], json!(1e16 + 2.0));
    let odd: Value = serde_json::from_str("[9007199254740993, -9007199254740992]").unwrap();
    assert_eq!(sum(json!({}), &[odd, json!(0.5)]).unwrap()["sum"], json!(1.5));
    // Totals beyond a double cancel exactly; a sum beyond the largest double fails everywhere.
    let max = f64::MAX;
    assert_eq!(
        sum(json!({}), &[json!([max, max]), json!(-max), json!(5e-324)]).unwrap()["sum"],
        json!(max)
    );
    let error = sum(json!({}), &[json!(max), json!(max)]).unwrap_err();
    assert_eq!(error.code(), "no_result", "{error}");
    assert!(error.to_string().contains("beyond the range of doubles"), "{error}");
    // Integers still come out as a float, as StatisticsUnivariate's sum.
    assert_eq!(
        sum(json!({}), &[json!(2), json!(3)]).unwrap(),
        json!({"sum": 5.0, "samples": 2})
    );
}

/// A number of a kind exact mode must sum exactly.
#[derive(Debug, Clone)]
enum Number {
    Int(BigInt),
    Float(f64),
}

impl Number {
    fn json(&self) -> Value {
        match self {
            Number::Int(int) => serde_json::from_str(&int.to_string()).unwrap(),
            Number::Float(float) => json!(float),
        }
    }

    fn exact(&self) -> BigRational {
        match self {
            Number::Int(int) => BigRational::from_integer(int.clone()),
            Number::Float(float) => exact(*float),
        }
    }
}

/// Small and huge ints (up to 2^1000), ints no double equals, decimals (42.7), ordinary
/// doubles, subnormals, ±1e300, ±f64::MAX, zeros and raw bit patterns.
fn number_strategy() -> impl Strategy<Value = Number> + Clone {
    let float = |x: f64| Number::Float(x);
    prop_oneof![
        2 => (-1000i64..1000).prop_map(|n| Number::Int(n.into())),
        1 => any::<i64>().prop_map(|n| Number::Int(n.into())),
        1 => (0u32..1 << 20, any::<bool>()).prop_map(|(k, negative)| {
            let n = (BigInt::from(1) << 60usize) + k;
            Number::Int(if negative { -n } else { n })
        }),
        1 => (prop::collection::vec(any::<u64>(), 1..16), any::<bool>()).prop_map(|(limbs, negative)| {
            let n = BigInt::from_slice(
                num_bigint::Sign::Plus,
                &limbs.iter().flat_map(|l| [*l as u32, (*l >> 32) as u32]).collect::<Vec<_>>(),
            ) >> 24usize;
            Number::Int(if negative { -n } else { n })
        }),
        3 => (-1e3f64..1e3).prop_map(float),
        2 => (-1_000_000i64..1_000_000).prop_map(|n| Number::Float(n as f64 / 10.0)),
        1 => (1u64..1 << 52, any::<bool>()).prop_map(|(bits, negative)| {
            let x = f64::from_bits(bits);
            Number::Float(if negative { -x } else { x })
        }),
        1 => prop::sample::select(vec![
            0.0, -0.0, 1.0, 0.1, 5e-324, -5e-324, 1e-300, 1e16, 1e300, -1e300, f64::MAX, -f64::MAX,
        ])
        .prop_map(float),
        1 => any::<u64>()
            .prop_map(f64::from_bits)
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(float),
    ]
}

/// 2 to 5 parties (some with no value) and the numbers of each.
fn parties_strategy() -> impl Strategy<Value = Vec<Vec<Number>>> {
    (2usize..=5).prop_flat_map(|parties| {
        prop::collection::vec((number_strategy(), 0..parties), 0..12).prop_map(move |items| {
            let mut split = vec![Vec::new(); parties];
            for (number, party) in items {
                split[party].push(number);
            }
            split
        })
    })
}

/// Runs a SecureSum of these parties' numbers; every party's output must be the same.
fn run_split(parameters: Value, split: &[Vec<Number>], seed: u64) -> Result<Value, EngineError> {
    let inputs: Vec<Value> = split
        .iter()
        .enumerate()
        .map(|(i, numbers)| match numbers.as_slice() {
            // A lone number, bare, at every other party: both shapes are inputs.
            [number] if i % 2 == 0 => number.json(),
            _ => Value::Array(numbers.iter().map(Number::json).collect()),
        })
        .collect();
    let spec = secure_sum(split.len(), parameters);
    let outputs = run_all(&spec, &inputs, &mut ChaCha20Rng::seed_from_u64(seed))?;
    assert!(
        outputs.windows(2).all(|w| w[0] == w[1]),
        "parties disagree: {outputs:?}"
    );
    Ok(outputs[0]["result"].clone())
}

fn total(numbers: &[Number]) -> BigRational {
    numbers.iter().map(Number::exact).sum()
}

/// A unit in the last place of `x`, as a rational.
fn ulp(x: f64) -> BigRational {
    let (_, power, _) = fixed_point::decompose(x);
    mantissa_times_power_of_two(BigInt::from(1), i64::from(power))
}

proptest! {
    // A fixed number of cases from a fixed seed, no failure files: the run is the same every
    // time and in CI.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(26),
        ..ProptestConfig::default()
    })]

    /// Exact mode: the correctly rounded exact sum of every value, or `no_result` exactly when
    /// that is beyond the doubles.
    #[test]
    fn exact_mode_is_the_correctly_rounded_exact_sum(split in parties_strategy(), seed in any::<u64>()) {
        let exact_sum: BigRational = split.iter().map(|numbers| total(numbers)).sum();
        let want = to_f64(&exact_sum);
        let count = split.iter().map(Vec::len).sum::<usize>();
        match run_split(json!({}), &split, seed) {
            Ok(result) => {
                prop_assert!(want.is_finite(), "{split:?}: {result}");
                let got = result["sum"].as_f64().unwrap();
                prop_assert_eq!(got.to_bits(), (want + 0.0).to_bits(), "{:?}", split);
                prop_assert_eq!(&result["samples"], &json!(count));
            }
            Err(error) => {
                prop_assert!(!want.is_finite(), "{split:?}: {error}");
                prop_assert_eq!(error.code(), "no_result");
            }
        }
    }

    /// Exact mode with a bound at or above every party's total: within 2^−58·B of the exact sum
    /// before the final rounding, so within one ulp when |sum| ≥ B/8.
    #[test]
    fn exact_mode_with_a_bound_is_within_its_stated_error(
        split in parties_strategy(),
        scale in prop::sample::select(vec![1.0, 1.5, 8.0, 1e6]),
        seed in any::<u64>(),
    ) {
        let largest = split
            .iter()
            .map(|numbers| total(numbers).abs())
            .max()
            .unwrap();
        let mut bound = to_f64(&largest) * scale;
        if exact(bound) < largest {
            bound = f64::from_bits(bound.to_bits() + 1);
        }
        prop_assume!(bound.is_finite());
        let bound = if bound == 0.0 { 1.0 } else { bound };
        let exact_sum: BigRational = split.iter().map(|numbers| total(numbers)).sum();
        match run_split(json!({"bound": bound}), &split, seed) {
            Ok(result) => {
                let got = result["sum"].as_f64().unwrap();
                let error = (exact(got) - &exact_sum).abs();
                // The grids' 2^−58·B, then the final rounding's half ulp.
                let allowed = exact(bound) * mantissa_times_power_of_two(BigInt::from(1), -58)
                    + ulp(got) / BigInt::from(2);
                prop_assert!(error <= allowed, "{split:?} bound {bound}: got {got}");
                if exact_sum.abs() * BigInt::from(8) >= exact(bound) {
                    prop_assert!(error < ulp(got), "{split:?} bound {bound}: got {got}, not within one ulp");
                }
            }
            Err(error) => {
                prop_assert_eq!(error.code(), "no_result", "{:?}: {}", split, error);
                prop_assert!(exact_sum.abs() > exact(f64::MAX) / BigInt::from(2), "{split:?}: {error}");
            }
        }
    }
}
