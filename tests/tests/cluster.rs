//! A three-server JetStream cluster written by `federation init --topology cluster`: each party's
//! stream has three replicas, and each party's node lists its own server first. Servers die
//! (`kill -9`) mid-batch, first one that does not lead alice's stream, then (after the first is
//! back) its leader: every computation succeeds at every party, and after each kill the parties are
//! computing again within 10 s. The 1,000 sums are fed in slices of 50 while fewer than 150 are
//! in flight, so that the batch is still running when the second kill comes (all at once, it
//! would be over within seconds).

use fsc_e2e::{Cluster, ClusterOptions, Topology, assert_all_summed, eventually, random_sums};
use fsc_tools::broker::Broker;
use serde_json::Value;
use std::time::{Duration, Instant};

const BATCH: usize = 1000;
/// The longest a kill may hold up the federation.
const MAX_STALL: Duration = Duration::from_secs(10);
/// Computations every party must finish after a kill to count as computing again: a few more
/// than could be finishing from before the kill.
const PROGRESS: f64 = 20.0;
const SLICE: usize = 50;
const IN_FLIGHT: f64 = 150.0;

const SUCCEEDED: &str = "fsc_computations_finished_total{status=\"succeeded\"}";

async fn succeeded(cluster: &Cluster) -> Vec<f64> {
    let mut counts = Vec::new();
    for node in &cluster.nodes {
        counts.push(node.client().metric(SUCCEEDED).await.unwrap_or(0.0));
    }
    counts
}

/// The i-th server (`fsc-<i+1>`).
fn server(cluster: &mut Cluster, i: usize) -> &mut Broker {
    if i == 0 {
        &mut cluster.broker
    } else {
        &mut cluster.servers[i - 1]
    }
}

/// The stream's state, once a leader answers for it.
async fn stream(cluster: &Cluster, admin: &async_nats::Client) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(info) = cluster.stream_info(admin).await {
            if info["cluster"]["leader"].is_string() {
                return info;
            }
        }
        assert!(Instant::now() < deadline, "the stream has no leader after 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The index of the server leading the stream (`fsc-<i+1>`).
fn leader(info: &Value) -> usize {
    let name = info["cluster"]["leader"].as_str().unwrap();
    name.strip_prefix("fsc-").and_then(|n| n.parse::<usize>().ok()).unwrap() - 1
}

/// Kills server `i` and returns how long until every party finished `PROGRESS` more computations.
async fn kill_and_time_the_stall(cluster: &mut Cluster, i: usize) -> Duration {
    let before = succeeded(cluster).await;
    let killed = Instant::now();
    server(cluster, i).kill();
    loop {
        let now = succeeded(cluster).await;
        let progressed = |(now, before): (&f64, &f64)| *now >= (before + PROGRESS).min(BATCH as f64);
        if now.iter().zip(&before).all(progressed) {
            return killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "no progress within 60 s of killing fsc-{}: finished {before:?} then, {now:?} now\n{}",
            i + 1,
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every replica of every party's stream is current (after a server came back).
async fn replicas_current(cluster: &Cluster, admin: &async_nats::Client) {
    eventually(Duration::from_secs(60), "all three replicas are current", || async {
        for party in &cluster.parties {
            let Some(info) = cluster.stream_info_of(admin, party).await else {
                return false;
            };
            let replicas = info["cluster"]["replicas"].as_array().cloned().unwrap_or_default();
            let current = info["cluster"]["leader"].is_string()
                && replicas.len() == 2
                && replicas.iter().all(|r| r["current"] == true && r["offline"] != true);
            if !current {
                return false;
            }
        }
        true
    })
    .await;
}

#[tokio::test]
async fn a_replicated_stream_survives_the_loss_of_a_follower_then_of_its_leader_mid_batch() {
    let mut cluster = Cluster::start_with(ClusterOptions {
        parties: 3,
        topology: Topology::Cluster,
        ..Default::default()
    })
    .await;
    let admin = cluster.admin().await;
    let info = stream(&cluster, &admin).await;
    assert_eq!(info["config"]["num_replicas"], 3, "{info}");
    replicas_current(&cluster, &admin).await;

    let (ids, per_node, sums) = random_sums(&cluster, BATCH, 11);
    let clients: Vec<_> = cluster.nodes.iter().map(|n| n.client()).collect();
    let feeder = tokio::spawn(async move {
        for start in (0..BATCH).step_by(SLICE) {
            loop {
                let mut least = f64::MAX;
                for client in &clients {
                    least = least.min(client.metric(SUCCEEDED).await.unwrap_or(0.0));
                }
                if start as f64 - least < IN_FLIGHT {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            for (client, items) in clients.iter().zip(&per_node) {
                let answers = client.submit_batch(&items[start..start + SLICE]).await.unwrap();
                assert!(answers.iter().all(|a| a["status"] == "pending"), "{answers:?}");
            }
        }
    });
    eventually(Duration::from_secs(120), "the batch is under way", || async {
        succeeded(&cluster).await.iter().all(|n| *n >= 150.0)
    })
    .await;

    let follower = (leader(&stream(&cluster, &admin).await) + 1) % 3;
    let follower_stall = kill_and_time_the_stall(&mut cluster, follower).await;
    assert!(
        follower_stall < MAX_STALL,
        "killing a follower stalled the federation for {follower_stall:?}\n{}",
        cluster.logs()
    );
    server(&mut cluster, follower).restart().unwrap();
    replicas_current(&cluster, &admin).await;

    eventually(Duration::from_secs(120), "the batch goes on", || async {
        succeeded(&cluster).await.iter().all(|n| *n >= 450.0)
    })
    .await;
    let leading = leader(&stream(&cluster, &admin).await);
    let done = succeeded(&cluster).await;
    assert!(
        done.iter().all(|n| *n < BATCH as f64 - 200.0),
        "the batch must still be running for the leader's kill to count: {done:?}"
    );
    let leader_stall = kill_and_time_the_stall(&mut cluster, leading).await;
    assert!(
        leader_stall < MAX_STALL,
        "killing the leader stalled the federation for {leader_stall:?}\n{}",
        cluster.logs()
    );
    let info = stream(&cluster, &admin).await;
    assert_ne!(leader(&info), leading, "a new leader took over: {info}");
    server(&mut cluster, leading).restart().unwrap();

    feeder.await.unwrap();
    assert_all_summed(&cluster, &ids, &sums).await;
    eprintln!("stall after the follower's kill {follower_stall:?}, after the leader's {leader_stall:?}");
}
