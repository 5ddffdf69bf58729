//! `fsc-bench`: the performance figures of the foundation, on this machine, with one nats-server
//! and three `fsc node` processes on loopback (the same harness as the end-to-end tests).
//!
//! ```text
//! cargo build --release -p fsc -p fsc-e2e && target/release/fsc-bench [--latency-runs N] [--batch N]
//! ```
//!
//! Prints: the latency of one 3-party SecureSum through the v1 API (all three submissions until
//! `succeeded` at all three nodes; p50/p90/p99 over sequential runs), the throughput of a large
//! batch (completed computations per second until every node has finished all of them), and
//! each node's resident memory when idle and after the batch.

use fsc_e2e::{Cluster, random_sums};
use futures::future::join_all;
use serde_json::json;
use std::time::{Duration, Instant};

const SUCCEEDED: &str = "fsc_computations_finished_total{status=\"succeeded\"}";
const FAILED: &str = "fsc_computations_finished_total{status=\"failed\"}";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} takes a number")))
            .unwrap_or(default)
    };
    let latency_runs = flag("--latency-runs", 300);
    let batch = flag("--batch", 20_000);

    let cluster = Cluster::start(3).await;
    println!(
        "fsc-bench: 3 nodes + nats-server on loopback, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("idle RSS (MB): {}", rss_line(&cluster));

    latency(&cluster, latency_runs).await;
    throughput(&cluster, batch).await;
    println!("RSS after {batch} finished computations (MB): {}", rss_line(&cluster));
}

async fn latency(cluster: &Cluster, runs: usize) {
    let clients: Vec<_> = cluster.nodes.iter().map(|n| n.client()).collect();
    // Warm up connections and code paths.
    for _ in 0..20 {
        one_sum(cluster, &clients).await;
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(runs);
    for _ in 0..runs {
        samples.push(one_sum(cluster, &clients).await);
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "latency of one 3-party SecureSum, submit at all three -> succeeded at all three, {runs} runs: \
         p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
}

async fn one_sum(cluster: &Cluster, clients: &[fsc_node::client::Client]) -> Duration {
    let id = uuid::Uuid::new_v4();
    let started = Instant::now();
    let submits = clients.iter().enumerate().map(|(i, c)| {
        let request = cluster.sum_request(id, json!(i));
        async move { c.submit(&request).await }
    });
    for answer in join_all(submits).await {
        assert_eq!(answer.expect("submit").status.as_u16(), 202);
    }
    let views = join_all(clients.iter().map(|c| c.wait_final(id, Duration::from_secs(30)))).await;
    let elapsed = started.elapsed();
    for view in views {
        assert_eq!(view.expect("read")["status"], "succeeded");
    }
    elapsed
}

async fn throughput(cluster: &Cluster, n: usize) {
    let (_, per_node, _) = random_sums(cluster, n, 42);
    let clients: Vec<_> = cluster.nodes.iter().map(|n| n.client()).collect();
    let mut base = Vec::new();
    for c in &clients {
        base.push(c.metric(SUCCEEDED).await.unwrap());
    }
    let started = Instant::now();
    let submitting = clients.iter().zip(&per_node).map(|(client, items)| async move {
        for chunk in items.chunks(1000) {
            let results = client.submit_batch(chunk).await.expect("batch submission");
            assert!(
                results.iter().all(|r| r["status"].is_string()),
                "a batch item was rejected"
            );
        }
    });
    let progress = async {
        let mut last_report = Instant::now();
        loop {
            let mut done = Vec::new();
            for (c, b) in clients.iter().zip(&base) {
                done.push(c.metric(SUCCEEDED).await.unwrap() - b);
                assert_eq!(c.metric(FAILED).await.unwrap(), 0.0, "a computation failed");
            }
            let least = done.iter().cloned().fold(f64::MAX, f64::min);
            if least >= n as f64 {
                return;
            }
            if last_report.elapsed() > Duration::from_secs(5) {
                println!(
                    "  ... {:.1} s: finished per node {done:?}",
                    started.elapsed().as_secs_f64()
                );
                last_report = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let submitted_at = async {
        join_all(submitting).await;
        started.elapsed()
    };
    let (submitted, ()) = tokio::join!(submitted_at, progress);
    let elapsed = started.elapsed();
    println!(
        "throughput: {n} 3-party SecureSums (batches of 1000 per node) finished at all three nodes in {:.2} s \
         = {:.0} computations/s (all submitted after {:.2} s)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        submitted.as_secs_f64()
    );
}

fn rss_line(cluster: &Cluster) -> String {
    cluster
        .nodes
        .iter()
        .map(|node| {
            let mb = node
                .pid()
                .and_then(rss_kb)
                .map_or("?".to_string(), |kb| format!("{:.1}", kb as f64 / 1024.0));
            format!("{} {mb}", node.id)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
