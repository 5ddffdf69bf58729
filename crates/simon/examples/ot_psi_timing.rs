//! Engine-only timing of the two-party OT PSI (SetIntersection, `psi = "ot"`), in release mode:
//! `cargo run --release -p fsc-simon --example ot_psi_timing -- [N] [RUNS]` (defaults 2^20 and
//! 5). Each run times the steps of the protocol one by one, on fsc-bench's sets (N items a side,
//! half shared), through the engine's public functions, then the whole protocol in the
//! simulator (which also stores every machine as JSON between steps, as a node does). Prints
//! each step's median over the runs, so that two builds can be compared on a shared machine.

use fsc_simon::Spec;
use fsc_simon::protocol::never;
use fsc_simon::psi::dh;
use fsc_simon::psi::ot::extension::{self, Block, Code, WIDTH};
use fsc_simon::psi::ot::{Items, base, cuckoo};
use fsc_simon::simulate::{psi_sets, run_all};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use rayon::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Instant;

/// Seconds since `started`, recorded under `step`.
fn lap(times: &mut BTreeMap<&'static str, Vec<f64>>, step: &'static str, started: &mut Instant) {
    times.entry(step).or_default().push(started.elapsed().as_secs_f64());
    *started = Instant::now();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(1 << 20, |a| a.parse().expect("N is a count"));
    let runs: usize = args.next().map_or(5, |a| a.parse().expect("RUNS is a count"));
    let inputs = psi_sets(2, n, n / 2);
    let spec = Spec::new("SetIntersection", &json!({"psi": "ot"}), 2).expect("a valid definition");
    let context = [7u8; 32];
    let mut times = BTreeMap::new();
    for run in 0..runs {
        let mut rng = ChaCha20Rng::seed_from_u64(run as u64);
        let mut t = Instant::now();
        let items: Vec<Items> = inputs.iter().map(|i| Items::from(dh::read_set(i))).collect();
        lap(&mut times, "01 read and sort the items (both)", &mut t);
        let values: Vec<Vec<Block>> = items
            .iter()
            .map(|items| cuckoo::values(&context, items, never()).unwrap())
            .collect();
        lap(&mut times, "02 items to values, SHA-256 (both)", &mut t);
        let bins = cuckoo::table_size(n);
        let (attempt, table) = cuckoo::place(&context, &values[0], bins, never()).unwrap();
        lap(&mut times, "03 receiver: cuckoo placement", &mut t);
        let secret = base::random_scalar(&mut rng);
        let mut s = [0u8; WIDTH / 8];
        rng.fill_bytes(&mut s);
        let choices: Vec<bool> = (0..WIDTH).map(|c| s[c / 8] >> (c % 8) & 1 == 1).collect();
        let (points, keys) = base::receive(&base::sender_point(&secret), &choices, &mut rng, 0).unwrap();
        let pairs = base::send(&secret, &points, 1).unwrap();
        lap(&mut times, "04 base OTs (both)", &mut t);
        let code = Code::new(&[[1; 16], [2; 16], [3; 16], [4; 16]]);
        let inputs_r: Vec<Block> = (0..bins)
            .map(|bin| {
                table
                    .slot(bin)
                    .map_or([0xff; 16], |(i, h)| cuckoo::input(&values[0][i], h))
            })
            .collect();
        let (mut rows, outputs) = extension::receive(&pairs, &code, &inputs_r, never()).unwrap();
        lap(&mut times, "05 receiver: OT extension rows and outputs", &mut t);
        extension::send(&keys, &s, &mut rows, never()).unwrap();
        lap(&mut times, "06 sender: OT extension keys q", &mut t);
        let candidates = cuckoo::candidates(&context, attempt, &values[1], bins, never()).unwrap();
        lap(&mut times, "07 sender: bins of its values", &mut t);
        // As the engine orders them: by bin, then item and hash function, one integer each.
        let mut points: Vec<u64> = candidates
            .iter()
            .enumerate()
            .flat_map(|(i, b)| (0..cuckoo::HASHES).map(move |h| u64::from(b[h]) << 32 | (i as u64) << 2 | h as u64))
            .collect();
        points.par_sort_unstable();
        let point = |k: usize| {
            let p = points[k];
            let (i, h) = ((p as u32 >> 2) as usize, (p & 3) as usize);
            ((p >> 32) as u32, cuckoo::input(&values[1][i], h))
        };
        let mut theirs = extension::evaluate(&rows, &s, &code, points.len(), point, |o| o, never()).unwrap();
        lap(&mut times, "08 sender: order by bin, OPRF at 3 bins an item", &mut t);
        theirs.sort_unstable();
        lap(&mut times, "09 sender: sort its outputs", &mut t);
        // Sorted, then merged with the sender's, as the engine finds its members.
        let mut mine = outputs;
        mine.sort_unstable();
        let mut rest = theirs.iter().peekable();
        let found = mine
            .iter()
            .filter(|o| {
                while rest.next_if(|t| t < o).is_some() {}
                rest.peek() == Some(o)
            })
            .count();
        lap(&mut times, "10 receiver: sort and merge its outputs", &mut t);
        assert!(found >= n / 2);
        let outputs = run_all(&spec, &inputs, &mut rng).expect("the computation succeeds");
        lap(&mut times, "11 the whole protocol in the simulator", &mut t);
        assert_eq!(outputs[0]["result"]["size_intersection"], json!(n / 2));
        eprintln!("run {run} done");
    }
    println!("2 × {n} items, medians of {runs} runs:");
    for (step, mut secs) in times {
        secs.sort_by(f64::total_cmp);
        println!("  {step:<48} {:>8.3} s", secs[secs.len() / 2]);
    }
}
