//! fsc-bench's PSI section: SetIntersection, SetIntersectionSize and StatisticsContingencyVertical
//! through `/v1` on the bench's nodes; two-party SetIntersection by OT PSI (the default) beside
//! the DH ring in the same run, with the nodes' peak memory during the largest OT PSI; the curve
//! operations alone (the engine's own functions, in this process, on all cores) for comparison,
//! a 3-party SecureSum's latency while the largest DH PSI runs, and the nodes' peak memory.

use fsc_e2e::{Cluster, psi_sets as sets};
use fsc_simon::protocol::never;
use fsc_simon::psi::dh::{self as psi, Key};
use futures::future::join_all;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Submits one computation at the first `inputs.len()` nodes; returns the seconds until it has
/// succeeded at all of them, and party 0's output. Every timed section of fsc-bench but the
/// sums and products runs its computations through this.
pub async fn timed(cluster: &Cluster, microprotocol: &str, parameters: &Value, inputs: &[Value]) -> (f64, Value) {
    let id = uuid::Uuid::new_v4();
    let parties = &cluster.parties[..inputs.len()];
    let clients: Vec<_> = cluster.nodes[..inputs.len()].iter().map(|n| n.client()).collect();
    let started = Instant::now();
    let submits = clients.iter().zip(inputs).map(|(client, input)| {
        let request = json!({
            "id": id, "microprotocol": microprotocol, "parties": parties, "parameters": parameters, "input": input,
        });
        async move { client.submit(&request).await }
    });
    for answer in join_all(submits).await {
        let answer = answer.expect("submit");
        assert_eq!(answer.status.as_u16(), 202, "{}", answer.body);
    }
    let views = join_all(clients.iter().map(|c| c.wait_final(id, Duration::from_secs(3600)))).await;
    let elapsed = started.elapsed().as_secs_f64();
    let views: Vec<Value> = views.into_iter().map(|v| v.expect("read")).collect();
    for view in &views {
        assert_eq!(view["status"], "succeeded", "{view}");
    }
    (elapsed, views[0]["output"]["result"].clone())
}

/// The curve work of a 2-party DH-PSI of `items` items a side, alone: hash and encrypt both lists,
/// add the second layer to both, sort; seconds.
fn curve_only(items: usize) -> f64 {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let lists: Vec<Vec<String>> = sets(2, items, items / 2)
        .iter()
        .map(|s| s[0].as_array().unwrap().iter().map(psi::canonical).collect())
        .collect();
    let keys = [Key::random(&mut rng), Key::random(&mut rng)];
    let started = Instant::now();
    for (owner, list) in lists.iter().enumerate() {
        let mut points = psi::encrypt_items(&keys[owner], &[0; 32], list, never()).unwrap();
        psi::shuffle(&mut points, 0).unwrap();
        psi::reencrypt(&keys[1 - owner], false, &mut points, 0, never()).unwrap();
        psi::shuffle(&mut points, 0).unwrap();
    }
    started.elapsed().as_secs_f64()
}

/// The seconds of one two-party SetIntersection of `inputs` by `method`, checking its size.
async fn intersect(cluster: &Cluster, method: &str, inputs: &[Value], shared: usize) -> f64 {
    let (secs, result) = timed(cluster, "SetIntersection", &json!({"psi": method}), inputs).await;
    assert_eq!(result["size_intersection"], shared);
    secs
}

/// Resets the nodes' peak resident memory (VmHWM), so that the next figure is one run's.
pub fn reset_peaks(cluster: &Cluster) {
    for pid in cluster.nodes.iter().filter_map(|node| node.pid()) {
        // Writing 5 to clear_refs resets the peak RSS (proc(5)); a failure leaves the old peak.
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    }
}

/// `ot_large`: items a side of the largest OT PSI; `large`: of the largest DH PSI.
pub async fn run(cluster: &Cluster, ot_large: usize, large: usize) {
    let small = sets(2, 10_000, 5_000);
    // Alternating, so that both methods meet the same load from the machine's other work.
    let (mut ot, mut dh) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        ot.push(intersect(cluster, "ot", &small, 5_000).await);
        dh.push(intersect(cluster, "dh", &small, 5_000).await);
    }
    ot.sort_by(f64::total_cmp);
    dh.sort_by(f64::total_cmp);
    println!(
        "SetIntersection 2 x 10,000 items (5,000 shared), median of 5 alternating runs: OT PSI (the default) \
         {:.2} s, DH ring {:.2} s (original: 75.9 s, {:.0}x)",
        ot[2],
        dh[2],
        75.9 / ot[2]
    );
    super::record("psi_two_party", json!({"items": 10_000, "ot_s": ot, "dh_s": dh}));
    reset_peaks(cluster);
    let secs = intersect(cluster, "ot", &sets(2, ot_large, ot_large / 2), ot_large / 2).await;
    super::record("psi_ot_large", json!({"items": ot_large, "s": secs}));
    println!(
        "SetIntersection 2 x {ot_large} items ({} shared) by OT PSI: {secs:.1} s; peak RSS of the nodes \
         meanwhile (MB): {}",
        ot_large / 2,
        super::memory_line(cluster, "VmHWM:")
    );
    if ot_large == large {
        println!("  (the DH ring on the same sets: SetIntersectionSize below, the same ring)");
    }
    let (secs, result) = timed(cluster, "SetIntersection", &json!({}), &sets(3, 10_000, 5_000)).await;
    assert_eq!(result["size_intersection"], 5_000);
    println!("SetIntersection 3 x 10,000 items (5,000 shared): {secs:.2} s");

    let ids = 100_000;
    let contingency: Vec<Value> = (0..2)
        .map(|p| {
            let pairs: Vec<Value> = (0..ids)
                // Party 1's ids overlap party 0's by half.
                .map(|i| json!([format!("id-{}", i + p * ids / 2), format!("c{}", (i * 7 + p) % 10)]))
                .collect();
            json!(pairs)
        })
        .collect();
    let (secs, result) = timed(cluster, "StatisticsContingencyVertical", &json!({}), &contingency).await;
    let total: u64 = result["table"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|row| row.as_object().unwrap().values().map(|c| c.as_u64().unwrap()))
        .sum();
    assert_eq!(total, ids as u64 / 2);
    println!("StatisticsContingencyVertical 2 x 100,000 ids, 10 x 10 categories: {secs:.2} s");

    // The largest: 3-party SecureSums run on the same nodes, one every 250 ms (so that they load
    // the nodes little), from its submission until it has finished (admission, curve work,
    // commits and transfers of its lists included).
    let inputs = sets(2, large, large / 2);
    let finished = std::sync::atomic::AtomicBool::new(false);
    let psi = async {
        let outcome = timed(cluster, "SetIntersectionSize", &json!({}), &inputs).await;
        finished.store(true, std::sync::atomic::Ordering::Relaxed);
        outcome
    };
    let began = Instant::now();
    let sums = async {
        let clients: Vec<_> = cluster.nodes.iter().map(|n| n.client()).collect();
        let mut latencies = Vec::new();
        let mut pace = tokio::time::interval(Duration::from_millis(250));
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !finished.load(std::sync::atomic::Ordering::Relaxed) {
            pace.tick().await;
            let id = uuid::Uuid::new_v4();
            let started = Instant::now();
            let submits = clients.iter().enumerate().map(|(p, c)| {
                let request = cluster.sum_request(id, json!(p));
                async move { c.submit(&request).await }
            });
            join_all(submits).await;
            for view in join_all(clients.iter().map(|c| c.wait_final(id, Duration::from_secs(60)))).await {
                assert_eq!(view.expect("read")["status"], "succeeded");
            }
            latencies.push((started.elapsed().as_secs_f64(), (started - began).as_secs_f64()));
        }
        latencies.sort_by(|a, b| a.0.total_cmp(&b.0));
        latencies
    };
    let ((secs, result), sums) = tokio::join!(psi, sums);
    assert_eq!(result["size_intersection"], large / 2);
    let alone = curve_only(large);
    println!(
        "SetIntersectionSize 2 x {large} items: {secs:.1} s; the curve operations alone (same machine, \
         all cores, this process): {alone:.1} s, so {:.2}x",
        secs / alone
    );
    let slowest: Vec<String> = sums
        .iter()
        .rev()
        .take(3)
        .map(|(secs, at)| format!("{:.0} ms at {at:.1} s", secs * 1000.0))
        .collect();
    println!(
        "  {} 3-party SecureSums meanwhile (one every 250 ms): median {:.0} ms; slowest: {}",
        sums.len(),
        sums.get(sums.len() / 2).map_or(f64::NAN, |s| s.0) * 1000.0,
        slowest.join(", ")
    );
    println!("peak RSS of the nodes (MB): {}", super::memory_line(cluster, "VmHWM:"));
}
