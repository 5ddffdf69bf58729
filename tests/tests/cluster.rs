//! A three-server JetStream cluster written by `federation init --topology cluster`: each party's
//! stream has three replicas, and each party's node lists its own server first. Servers die
//! (`kill -9`) mid-batch, first one that does not lead alice's stream, then (after the first is
//! back) its leader: every computation succeeds at every party. Each kill's stall is timed in two
//! parts: until NATS has a new leader for every group the killed server led (each party's stream
//! and inbox consumer, the meta group), which nats-server's raft takes seconds to elect and the
//! nodes cannot hasten, so it is only held to what nats-server's timeouts allow; and from then
//! until every party has finished `PROGRESS` more computations, the nodes' part, held to a few
//! seconds. (One 10 s bound on the sum failed now and then: the elections alone may take 9.8 s.)
//! The 1,000 sums are fed in slices of 50 while fewer than 150 are in flight, so that the batch is
//! still running when the second kill comes (all at once, it would be over within seconds).

use fsc_e2e::{Cluster, ClusterOptions, Topology, assert_all_summed, eventually, jetstream_api, random_sums};
use fsc_tools::broker::Broker;
use futures::FutureExt;
use futures::future::join_all;
use serde_json::Value;
use std::time::{Duration, Instant};

const BATCH: usize = 1000;
/// The longest NATS may take to elect a new leader for every group the killed server led: a raft
/// follower of nats-server waits 4–9 s (not configurable) before it campaigns, for up to 0.8 s,
/// and an election may take a second round (a split vote, or a candidate refused for a log behind
/// the voter's). Not the nodes' doing: this only keeps the test from waiting for ever.
const MAX_ELECTION: Duration = Duration::from_secs(20);
/// The longest the nodes may take to compute again once NATS has elected. A node pulls afresh
/// within 250 ms of its consumer's new leader and re-sends a refused publish after 250 ms, but what
/// was in flight through the killed server comes again only after a timeout counted from the
/// kill, which may end after the elections: a delivery after the consumer's ack wait
/// (`consumer_ack_wait_ms`, 5 s), a publish after `publish_ack_timeout_ms` (2 s): 6 s is the
/// longer of them and a second for the computations waiting on it to finish.
const MAX_OURS: Duration = Duration::from_secs(6);
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

/// How long a kill held the federation up, from the kill: until NATS had a leader again for every
/// group it must elect (`elected`), and until every party had finished `PROGRESS` more
/// computations (`progressed`).
#[derive(Debug)]
struct Stall {
    elected: Duration,
    progressed: Duration,
}

impl Stall {
    /// The nodes' part: from the last election to every party computing again (nothing if they
    /// were computing before NATS had elected every leader).
    fn ours(&self) -> Duration {
        self.progressed.saturating_sub(self.elected)
    }
}

/// The groups that have no leader but `killed` yet: of every party's stream and inbox consumer,
/// and the meta group (only its leader answers `STREAM.NAMES`). Each is asked for at most 500 ms,
/// all at once, so that a leader elected meanwhile is seen soon.
async fn leaderless(cluster: &Cluster, admin: &async_nats::Client, killed: &str) -> Vec<String> {
    async fn led(info: impl Future<Output = Option<Value>>, killed: &str) -> bool {
        let info = tokio::time::timeout(Duration::from_millis(500), info)
            .await
            .ok()
            .flatten();
        info.is_some_and(|i| i["cluster"]["leader"].as_str().is_some_and(|l| l != killed))
    }
    let groups = cluster.parties.iter().flat_map(|party| {
        [
            (
                format!("{party}'s stream"),
                led(cluster.stream_info_of(admin, party), killed).boxed(),
            ),
            (
                format!("{party}'s consumer"),
                led(cluster.consumer_info_of(admin, party), killed).boxed(),
            ),
        ]
    });
    let meta = async {
        tokio::time::timeout(Duration::from_millis(500), jetstream_api(admin, "STREAM.NAMES"))
            .await
            .ok()
            .flatten()
            .is_some()
    };
    let (names, checks): (Vec<String>, Vec<_>) = groups.chain([("the meta group".to_string(), meta.boxed())]).unzip();
    let led = join_all(checks).await;
    names
        .into_iter()
        .zip(led)
        .filter(|(_, led)| !led)
        .map(|(name, _)| name)
        .collect()
}

/// Kills server `i` and times the stall it causes. An election is timed from the start of the
/// polling round that first saw every leader: it may count up to one round (500 ms) late, which
/// makes the nodes' part look up to 500 ms shorter, well inside `MAX_OURS`'s margin.
async fn kill_and_time_the_stall(cluster: &mut Cluster, admin: &async_nats::Client, i: usize) -> Stall {
    let before = succeeded(cluster).await;
    let killed = Instant::now();
    server(cluster, i).kill();
    let cluster = &*cluster;
    let name = format!("fsc-{}", i + 1);
    let elected = async {
        loop {
            let round = killed.elapsed();
            let missing = leaderless(cluster, admin, &name).await;
            if missing.is_empty() {
                return round;
            }
            assert!(
                killed.elapsed() < Duration::from_secs(60),
                "NATS elected no leader for {missing:?} within 60 s of killing {name}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let progressed = async {
        loop {
            let now = succeeded(cluster).await;
            let progressed = |(now, before): (&f64, &f64)| *now >= (before + PROGRESS).min(BATCH as f64);
            if now.iter().zip(&before).all(progressed) {
                return killed.elapsed();
            }
            assert!(
                killed.elapsed() < Duration::from_secs(60),
                "no progress within 60 s of killing {name}: finished {before:?} then, {now:?} now\n{}",
                cluster.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (elected, progressed) = tokio::join!(elected, progressed);
    Stall { elected, progressed }
}

/// Asserts that NATS elected within `MAX_ELECTION` and the nodes computed again within
/// `MAX_OURS` of that.
fn assert_stall(stall: &Stall, what: &str, cluster: &Cluster) {
    assert!(
        stall.elected < MAX_ELECTION,
        "NATS took {:?} to elect new leaders after {what} ({stall:?})",
        stall.elected
    );
    assert!(
        stall.ours() < MAX_OURS,
        "the nodes computed again {:?} after NATS had new leaders, after {what} ({stall:?})\n{}",
        stall.ours(),
        cluster.logs()
    );
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
    let follower_stall = kill_and_time_the_stall(&mut cluster, &admin, follower).await;
    assert_stall(&follower_stall, "killing a follower", &cluster);
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
    let leader_stall = kill_and_time_the_stall(&mut cluster, &admin, leading).await;
    assert_stall(&leader_stall, "killing the leader", &cluster);
    let info = stream(&cluster, &admin).await;
    assert_ne!(leader(&info), leading, "a new leader took over: {info}");
    server(&mut cluster, leading).restart().unwrap();

    feeder.await.unwrap();
    assert_all_summed(&cluster, &ids, &sums).await;
    eprintln!("stall after the follower's kill {follower_stall:?}, after the leader's {leader_stall:?}");
}
