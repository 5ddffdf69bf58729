//! Engine-only timing of StatisticsUnivariate: all three parties in one process (the
//! simulator), each with N values drawn as fsc-bench draws them, in release mode:
//! `cargo run --release -p fsc-simon --example univariate_timing -- [N] [RUNS]`
//! (defaults 1,000,000 and 5). Prints every run's wall time and their median, so that two
//! builds can be compared run by run on a shared machine.

use fsc_simon::Spec;
use fsc_simon::simulate::run_all;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};
use std::time::Instant;

/// fsc-bench's generator (tests/bin/bench.rs): uniform in [−200, 800).
fn floats(party: u64, n: usize) -> Value {
    let mut state = party
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let values: Vec<f64> = (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 1000.0 - 200.0
        })
        .collect();
    json!(values)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(1_000_000, |a| a.parse().expect("N is a count"));
    let runs: usize = args.next().map_or(5, |a| a.parse().expect("RUNS is a count"));
    let inputs: Vec<Value> = (0..3).map(|p| floats(p, n)).collect();
    let spec = Spec::new("StatisticsUnivariate", &json!({}), 3).expect("a valid definition");
    let mut times = Vec::new();
    for run in 0..runs {
        let mut rng = ChaCha20Rng::seed_from_u64(run as u64);
        let started = Instant::now();
        let outputs = run_all(&spec, &inputs, &mut rng).expect("the computation succeeds");
        let elapsed = started.elapsed().as_secs_f64();
        assert_eq!(outputs[0]["result"]["samples"], json!(3 * n));
        println!("run {run}: {:.3} s", elapsed);
        times.push(elapsed);
    }
    times.sort_by(f64::total_cmp);
    println!("3 × {n} values: median {:.3} s over {runs} runs", times[runs / 2]);
}
