//! What each party receives, recorded in the simulator and checked against what each protocol's
//! documentation says that party learns: uniform masked vectors, and openings (the sums every party
//! reconstructs) that depend only on the documented result, never on how the data are split
//! between the parties. Pure: no I/O.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use fsc_simon::Spec;
use fsc_simon::simulate::{Transcript, run_recorded};
use num_bigint::{BigInt, BigUint};
use num_traits::{One, ToPrimitive, Zero};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// (channel, round) → the reconstructed vector, as residues.
type Openings = BTreeMap<(String, u64), Vec<BigUint>>;

fn parse_hex(text: &str) -> BigUint {
    BigUint::parse_bytes(text.as_bytes(), 16).unwrap()
}

/// Walks a message to its rounds; `path` names the enum variants that wrap them (the channel).
fn visit(
    value: &Value,
    path: &str,
    from: usize,
    out: &mut BTreeMap<(String, u64, usize), Vec<String>>,
    shares: &mut Vec<String>,
) {
    let Value::Object(fields) = value else { return };
    if let (Some(round), Some(sum)) = (fields.get("round"), fields.get("sum")) {
        let masked = &sum["Masked"]["values"];
        let values: Vec<String> = masked
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        shares.extend(values.iter().cloned());
        out.insert((path.to_string(), round.as_u64().unwrap(), from), values);
        return;
    }
    for (key, inner) in fields {
        visit(inner, &format!("{path}/{key}"), from, out, shares);
    }
}

/// Every opening of a run (every party broadcasts its masked vector; their sum is the opening),
/// and the masked vectors party 0 received.
fn openings(transcript: &Transcript) -> (Openings, Vec<String>) {
    let mut partials = BTreeMap::new();
    let mut shares = Vec::new();
    for (from, to, bytes) in transcript.deliveries() {
        let mut received = Vec::new();
        visit(
            &serde_json::from_slice(bytes).unwrap(),
            "",
            from,
            &mut partials,
            &mut received,
        );
        if to == 0 {
            shares.extend(received);
        }
    }
    let mut opened: Openings = BTreeMap::new();
    for ((channel, round, _), values) in partials {
        let modulus = BigUint::one() << (4 * values[0].len());
        let entry = opened
            .entry((channel, round))
            .or_insert_with(|| vec![BigUint::zero(); values.len()]);
        for (acc, value) in entry.iter_mut().zip(&values) {
            *acc = (&*acc + parse_hex(value)) % &modulus;
        }
    }
    (opened, shares)
}

fn run(protocol: &str, parameters: Value, inputs: &[Value], seed: u64) -> (Value, Openings, Vec<String>, Transcript) {
    let spec = Spec::new(protocol, &parameters, inputs.len()).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let transcript = run_recorded(&spec, inputs, &mut rng).unwrap();
    let (opened, shares) = openings(&transcript);
    (transcript.outputs[0].clone(), opened, shares, transcript)
}

/// Which opened elements are zero: all an OR reveals.
fn zero_pattern(opened: &Openings) -> BTreeMap<(String, u64), Vec<bool>> {
    opened
        .iter()
        .map(|(k, v)| (k.clone(), v.iter().map(Zero::is_zero).collect()))
        .collect()
}

/// Each bit of the collected ring elements is set about half the time.
fn assert_uniform_bits(values: &[BigUint], bits: u64, what: &str) {
    let n = values.len() as f64;
    let tolerance = 5.0 * (n * 0.25).sqrt();
    for bit in 0..bits {
        let ones = values.iter().filter(|v| v.bit(bit)).count() as f64;
        assert!(
            (ones - n / 2.0).abs() < tolerance,
            "{what}: bit {bit} set {ones} of {n} times"
        );
    }
}

#[test]
fn minimum_maximum_reveals_only_or_bits_that_the_result_determines() {
    // The same count, minimum and maximum, split differently: every party's own extremes differ.
    let split_a = [json!([-3, 7]), json!([1, 12.5]), json!([0])];
    let split_b = [json!([12.5]), json!([-3]), json!([5, 0, 1])];
    let (out_a, opened_a, _, _) = run("MinimumMaximum", json!({}), &split_a, 1);
    let (out_b, opened_b, _, _) = run("MinimumMaximum", json!({}), &split_b, 2);
    assert_eq!(out_a, out_b);
    assert_eq!(out_a["result"], json!({"samples": 5, "minimum": -3, "maximum": 12.5}));
    assert_eq!(zero_pattern(&opened_a), zero_pattern(&opened_b));
    assert_eq!(
        opened_a[&("".to_string(), 0)][0],
        BigUint::from(5u32),
        "the count is opened"
    );
    // A non-zero OR is uniform: across runs, the bits of one opened position are balanced.
    let mut ors = Vec::new();
    let mut shares = Vec::new();
    for seed in 0..120 {
        let (_, opened, received, _) = run("MinimumMaximum", json!({}), &split_a, 100 + seed);
        for round in 1..8 {
            ors.extend(
                opened[&("".to_string(), round)]
                    .iter()
                    .filter(|v| !v.is_zero())
                    .take(3)
                    .cloned(),
            );
        }
        shares.extend(received.iter().take(16).map(|s| parse_hex(s)));
    }
    assert_uniform_bits(&ors, 64, "opened ORs");
    assert_uniform_bits(&shares, 64, "shares received");
}

#[test]
fn rank_searches_reveal_only_counts_of_the_union() {
    let split_a = [json!([1, 5, 9]), json!([2, 6]), json!([3, 7, 8])];
    let split_b = [json!([9, 8, 7, 6]), json!([5]), json!([1, 2, 3])];
    let (out_a, opened_a, _, _) = run("SecureMedian", json!({}), &split_a, 3);
    let (out_b, opened_b, _, _) = run("SecureMedian", json!({}), &split_b, 4);
    assert_eq!(out_a["result"], json!({"median": 5.5}));
    assert_eq!(out_a, out_b);
    assert_eq!(opened_a, opened_b, "every opened count is a count of the union");
    let kth = |values: Value| json!([{"array": values, "rank": 2, "lower_bound": 0, "upper_bound": 10}]);
    let (_, opened_a, _, _) = run("KthElement", json!({}), &split_a.clone().map(kth), 5);
    let (_, opened_b, _, _) = run("KthElement", json!({}), &split_b.clone().map(kth), 6);
    assert_eq!(opened_a, opened_b);
}

/// A wide-ring opening as a double (exact encoding scaled by 2^1100).
fn decode_wide(value: &BigUint) -> f64 {
    let modulus = BigUint::one() << 2304u32;
    let signed = if value.bit(2303) {
        BigInt::from(value.clone()) - BigInt::from(modulus)
    } else {
        BigInt::from(value.clone())
    };
    fsc_simon::fixed_point::ratio_to_f64(&signed, &(BigInt::one() << 1100u32))
}

#[test]
fn statistics_open_only_functions_of_the_union() {
    let split_a = [json!([1.0, 2.0, 3.0, 4.0, 5.0]), json!([6.0, 7.0, 8.0, 9.0, 10.0])];
    let split_b = [json!([10.0, 1.0]), json!([2.0, 9.0, 3.0, 8.0, 4.0, 7.0, 5.0, 6.0])];
    let pairs = |values: &Value| {
        json!(
            values
                .as_array()
                .unwrap()
                .iter()
                .map(|x| json!([x, x.as_f64().unwrap() * 2.0 - 1.0]))
                .collect::<Vec<_>>()
        )
    };
    for (protocol, a, b) in [
        ("StatisticsUnivariate", split_a.to_vec(), split_b.to_vec()),
        (
            "StatisticsBivariate",
            split_a.iter().map(pairs).collect(),
            split_b.iter().map(pairs).collect(),
        ),
    ] {
        let (out_a, opened_a, _, _) = run(protocol, json!({}), &a, 7);
        let (out_b, opened_b, _, _) = run(protocol, json!({}), &b, 8);
        for (key, value) in out_a["result"].as_object().unwrap() {
            let other = &out_b["result"][key];
            assert!(
                value
                    .as_f64()
                    .zip(other.as_f64())
                    .is_none_or(|(x, y)| (x - y).abs() <= 1e-12 * x.abs().max(1.0)),
                "{key}"
            );
        }
        assert_eq!(zero_pattern(&opened_a), zero_pattern(&opened_b), "{protocol}");
        for (key, values) in &opened_a {
            if !key.0.ends_with("Sums") && protocol == "StatisticsUnivariate" {
                continue;
            }
            for (x, y) in values.iter().zip(&opened_b[key]) {
                let (x, y) = (decode_wide(x), decode_wide(y));
                assert!(
                    (x - y).abs() <= 1e-12 * x.abs().max(1.0),
                    "{protocol} {key:?}: {x} vs {y}"
                );
            }
        }
    }
}

#[test]
fn given_categories_keep_every_party_s_values_at_home() {
    let inputs = [json!(["a", "b", "a"]), json!(["c", 1, 1])];
    let (out, opened, _, delivered) = run(
        "StatisticsFrequency",
        json!({"categories": ["a", "b", "c", 1, "d"]}),
        &inputs,
        9,
    );
    assert_eq!(
        out["result"]["histogram"],
        json!({"a": 2, "b": 1, "c": 1, "1": 2, "d": 0})
    );
    for (_, _, bytes) in delivered.deliveries() {
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(!text.contains("Categories"), "a party's categories travelled: {text}");
    }
    let counts: Vec<u64> = opened[&("/Round".to_string(), 0)]
        .iter()
        .map(|c| c.to_u64().unwrap())
        .collect();
    assert_eq!(
        counts,
        [2, 1, 1, 0, 2],
        "the opened counts are the histogram, in canonical order"
    );
    // Without the parameter each party sends its own set of values (documented), never a count.
    let (_, _, _, delivered) = run("StatisticsFrequency", json!({}), &inputs, 10);
    let sets: Vec<Value> = delivered
        .deliveries()
        .filter_map(|(_, _, bytes)| {
            serde_json::from_slice::<Value>(bytes)
                .unwrap()
                .get("Categories")
                .cloned()
        })
        .collect();
    assert_eq!(sets.len(), 2, "one set to each other party");
    assert!(
        sets.contains(&json!([["a", "b"]])) && sets.contains(&json!([["c", 1]])),
        "{sets:?}"
    );
}

/// Issue 20.3: what a party opens moves only with the output. B's value changes below the
/// output's precision (one unit in its 12th decimal, beside a value of 3.1e25, or beside a
/// product entry of 1e6): every output is the same, and so is every opened total (univariate,
/// bivariate) or share (the product), because each contribution is rounded to a public grid
/// coarser than the change. Before the grids, every opened sum was exact and differed.
#[test]
fn opened_totals_move_only_with_the_output() {
    // A zero leaves the harmonic and geometric means undefined, which would show the change.
    let univariate = |b: f64| [json!([0.0, 5.0]), json!([b]), json!([3.1e25])];
    let bivariate = |b: f64| {
        [
            json!([[0.0, 0.0], [5.0, 1.0]]),
            json!([[b, 2.0]]),
            json!([[3.1e25, 3.0]]),
        ]
    };
    for (protocol, a, b) in [
        (
            "StatisticsUnivariate",
            univariate(12345.678901),
            univariate(12345.678902),
        ),
        ("StatisticsBivariate", bivariate(12345.678901), bivariate(12345.678902)),
    ] {
        let (out_a, opened_a, _, _) = run(protocol, json!({}), &a, 11);
        let (out_b, opened_b, _, _) = run(protocol, json!({}), &b, 11);
        assert_eq!(out_a, out_b, "{protocol}: the outputs are equal");
        assert_eq!(opened_a, opened_b, "{protocol}: so are the opened totals");
    }
    // Party 0's [1e-12, 1e6] times party 1's column: one unit of the 12th decimal of y₀ moves
    // the product by 1e-24, far below its ulp (1.2e-10) and below the grid of 2^12 units.
    let product = |y0: f64| [json!([[[1e-12, 1e6]]]), json!([[[y0], [1.0]]]), Value::Null];
    // The product each owner opens: its own rounded share plus the other's, in the ring.
    let opened = |transcript: &Transcript| -> BigUint {
        let shares: Vec<BigUint> = transcript
            .deliveries()
            .filter_map(|(_, _, bytes)| serde_json::from_slice::<Value>(bytes).unwrap().get("Share").cloned())
            .map(|share| {
                let raw = BASE64.decode(share["data"].as_str().unwrap()).unwrap();
                BigUint::from_bytes_le(&raw)
            })
            .collect();
        assert_eq!(shares.len(), 2, "one share each way");
        (&shares[0] + &shares[1]) % (BigUint::one() << 256u32)
    };
    let (out_a, _, _, a) = run("SecureMatrixMultiplication", json!({}), &product(0.5), 12);
    let (out_b, _, _, b) = run("SecureMatrixMultiplication", json!({}), &product(0.500000000001), 12);
    assert_eq!(out_a, out_b, "the products are equal");
    assert_eq!(opened(&a), opened(&b), "so are the products the owners open");
    // 1e6 + 5e-13 is 10^30 + 5·10^11 units of 10^−24, 2^11·(odd) above 10^30: opened as a
    // neighbour on the grid of 2^12 units, not exactly.
    let exact = BigUint::from(10u64).pow(30) + BigUint::from(500_000_000_000u64);
    let got = opened(&a);
    assert!(&got % 4096u32 == BigUint::zero(), "on the grid");
    assert!(got.clone().max(exact.clone()) - got.min(exact) < BigUint::from(4096u32));
}

/// What the broker sees of a run: (from, to, length) of every message, in order.
fn message_lengths(protocol: &str, parameters: &Value, inputs: &[Value]) -> Vec<(usize, usize, usize)> {
    let spec = Spec::new(protocol, parameters, inputs.len()).unwrap();
    run_recorded(&spec, inputs, &mut ChaCha20Rng::seed_from_u64(5))
        .unwrap()
        .lengths()
}

/// StatisticsUnivariate's messages are as long whatever the data: all positive, a zero among
/// them, negatives (which decide whether Σ ln x, the zero test and Σ 1/x are asked for), the
/// same parties with as many values send messages of the same lengths, so the broker learns
/// nothing from them.
#[test]
fn univariate_message_lengths_show_nothing_of_the_data() {
    let lengths = |inputs: &[Value]| message_lengths("StatisticsUnivariate", &json!({}), inputs);
    let positive = lengths(&[json!([1.5, 2.0, 3.0]), json!([4.0, 5.0]), json!([6.0])]);
    for inputs in [
        [json!([0.0, 2.0, 3.0]), json!([4.0, 5.0]), json!([6.0])],
        [json!([-1.5, 2.0, 3.0]), json!([-4.0, 0.0]), json!([6.0])],
        [json!([-1.5, -2.0, -3.0]), json!([-4.0, -5.0]), json!([-6.0])],
    ] {
        assert_eq!(lengths(&inputs), positive, "{inputs:?}");
    }
}

/// SecureSum's messages are as long whatever the values (zero, negative, tiny, huge, ints, many
/// or none): their length depends on the parameters and the parties only. An exact sum without
/// a bound carries 576 hex digits an element (Z_2^2304), the other modes 64 (Z_2^256).
#[test]
fn secure_sum_message_lengths_show_nothing_of_the_values() {
    for (parameters, hex_digits) in [
        (json!({}), 576),
        (json!({"bound": 1e9}), 64),
        (json!({"digits_after": 12}), 64),
    ] {
        let expected = message_lengths("SecureSum", &parameters, &[json!(0), json!([]), json!(1)]);
        assert!(
            expected
                .iter()
                .all(|(_, _, length)| (2 * hex_digits..3 * hex_digits).contains(length)),
            "{parameters}: {expected:?}"
        );
        for inputs in [
            [json!(-0.5), json!([1, [2, 3.25]]), json!(-7)],
            [json!(1e8), json!(-1e8), json!(5e-324)],
            [json!(vec![123_456.789; 1000]), json!(-999_999_999), json!([[0.1], 0.2])],
        ] {
            assert_eq!(
                message_lengths("SecureSum", &parameters, &inputs),
                expected,
                "{parameters}: {inputs:?}"
            );
        }
    }
}
