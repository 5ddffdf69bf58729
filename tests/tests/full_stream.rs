//! One absent party does not stop the others (issue 22, item 2). Carol is away while alice and
//! bob keep submitting 3-party sums, until what waits for carol fills her stream (a small
//! `max_bytes`; the operator tops it up to the brim). Two-party sums between alice and bob must still complete at once: each party's
//! inbox is a stream of its own, and a node parks the messages for a party whose stream is full
//! instead of holding up the others'. Each node says so once in its log (WARN), in `/v1/node`,
//! on its operator page and in its metrics, and retries carol's stream seldom (backoff), not
//! thousands of times a second. Once carol is back she drains her stream, the parked messages
//! follow, every computation succeeds at every party, and the nodes say that it cleared.

use async_nats::jetstream;
use fsc_e2e::{Cluster, ClusterOptions, eventually};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Carol's stream holds at most this (the least a roster allows): some thousands of 3-party sums.
const MAX_BYTES: i64 = 1 << 20;
/// 3-party sums submitted at once while carol is away.
const SLICE: usize = 1000;
const FULL: &str = "stream FSC-carol is full";
const CLEARED: &str = "stream FSC-carol takes messages again";

/// A sum in fixed point: its messages are a fifth of an exact sum's, so that carol's small
/// stream fills while bob's (as small: one `max_bytes` for all) keeps up with alice's slices.
fn sum(parties: &[&str], id: Uuid, input: i64) -> Value {
    json!({
        "id": id, "microprotocol": "SecureSum", "parties": parties, "input": input,
        "parameters": {"digits_after": 12}
    })
}

async fn metric(cluster: &Cluster, party: &str, name: &str) -> f64 {
    cluster.node(party).client().metric(name).await.unwrap_or(0.0)
}

/// Asserts that every sum of `sums` (id, i) succeeded at `party` within `timeout`, with the sum
/// `i * factor` (the parties' inputs are multiples of i whose factors add up to `factor`).
async fn summed(cluster: &Cluster, party: &str, sums: &[(Uuid, i64)], factor: i64, timeout: Duration) {
    let client = cluster.node(party).client();
    for (id, i) in sums {
        let view = client.wait_final(*id, timeout).await.unwrap();
        assert_eq!(
            view["output"]["result"]["sum"].as_f64(),
            Some((i * factor) as f64),
            "{party} {id} (alice and bob stall behind carol's full stream?): {view}\n{}",
            cluster.logs()
        );
    }
}

#[tokio::test]
async fn a_full_stream_for_an_absent_party_does_not_stop_the_others() {
    let mut cluster = Cluster::start_with(ClusterOptions {
        parties: 3,
        stream_max_bytes: Some(MAX_BYTES),
        env: vec![("FSC_MAX_ACTIVE_COMPUTATIONS".into(), "40000".into())],
        ..Default::default()
    })
    .await;
    cluster.node_mut("carol").kill();
    let (alice, bob) = (cluster.node("alice").client(), cluster.node("bob").client());
    let everyone = ["alice", "bob", "carol"];

    // 3-party sums, alice's and bob's parts, until carol's stream refuses what alice sends her.
    let mut waiting: Vec<(Uuid, i64)> = Vec::new();
    while metric(&cluster, "alice", "fsc_publish_retries_total").await == 0.0 {
        assert!(
            waiting.len() < 30 * SLICE,
            "carol's stream of {MAX_BYTES} bytes is not full after {} sums\n{}",
            waiting.len(),
            cluster.logs()
        );
        let slice: Vec<(Uuid, i64)> = (0..SLICE).map(|i| (Uuid::new_v4(), i as i64)).collect();
        for (client, input) in [(&alice, 1), (&bob, 10)] {
            let items: Vec<Value> = slice.iter().map(|(id, i)| sum(&everyone, *id, i * input)).collect();
            let answers = client.submit_batch(&items).await.unwrap();
            assert!(answers.iter().all(|a| a["status"] == "pending"), "{answers:?}");
        }
        waiting.extend(slice);
        // What this slice sent carol has reached her stream or been refused.
        eventually(Duration::from_secs(60), "alice and bob have sent the slice", || async {
            let mut settled = true;
            for party in ["alice", "bob"] {
                let pending = metric(&cluster, party, "fsc_outbox_pending").await;
                let parked = metric(&cluster, party, "fsc_stream_full_waiting_messages").await;
                let refused = metric(&cluster, party, "fsc_publish_retries_total").await > 0.0;
                settled &= pending <= parked || refused;
            }
            settled
        })
        .await;
    }
    eprintln!("carol's stream refuses a bundle after {} 3-party sums", waiting.len());
    // To the brim: what is left (less than a bundle) takes ever smaller messages, as the operator
    // can send them, until not even a lone sum's message would fit. (Carol drops them as
    // malformed when she is back.)
    let js = jetstream::new(cluster.admin().await);
    let mut filler = 0;
    for size in [16 << 10, 1 << 10, 64] {
        loop {
            let subject = cluster.names().subject(&Uuid::new_v4().to_string(), "carol", "alice");
            match js.publish(subject, vec![0; size].into()).await.unwrap().await {
                Ok(_) => filler += 1,
                Err(error) => {
                    assert!(error.to_string().contains("maximum bytes exceeded"), "{error}");
                    break;
                }
            }
        }
    }
    eprintln!("carol's stream is full with {filler} more messages of the operator's");

    // Alice and bob go on computing between themselves, promptly.
    let started = Instant::now();
    let pairs: Vec<(Uuid, i64)> = (0..50).map(|i| (Uuid::new_v4(), i)).collect();
    for (client, input) in [(&alice, 1), (&bob, 100)] {
        let items: Vec<Value> = pairs
            .iter()
            .map(|(id, i)| sum(&["alice", "bob"], *id, i * input))
            .collect();
        let answers = client.submit_batch(&items).await.unwrap();
        assert!(answers.iter().all(|a| a["status"] == "pending"), "{answers:?}");
    }
    for party in ["alice", "bob"] {
        summed(&cluster, party, &pairs, 101, Duration::from_secs(20)).await;
    }
    let took = started.elapsed();
    eprintln!("50 two-party sums took {took:?} while carol's stream was full");
    assert!(took < Duration::from_secs(10), "{took:?}");

    // Each sender says so, once, and shows it.
    for party in ["alice", "bob"] {
        let node = cluster.node(party);
        let client = node.client();
        eventually(
            Duration::from_secs(10),
            "the node shows carol's full stream",
            || async {
                client.node().await.unwrap()["full_streams"]
                    .as_array()
                    .is_some_and(|full| !full.is_empty())
            },
        )
        .await;
        let view = client.node().await.unwrap();
        let full = &view["full_streams"][0];
        assert_eq!(full["party"], "carol", "{view}");
        assert_eq!(full["stream"], "FSC-carol", "{view}");
        assert!(full["waiting_messages"].as_u64().unwrap() > 0, "{view}");
        assert_eq!(view["full_streams"].as_array().unwrap().len(), 1, "{view}");
        let log = node.log();
        assert_eq!(log.matches(FULL).count(), 1, "{party} warns once:\n{log}");
        assert!(log.lines().any(|l| l.contains(FULL) && l.contains("WARN")), "{log}");
        assert_eq!(metric(&cluster, party, "fsc_streams_full").await, 1.0);
        assert_eq!(metric(&cluster, party, "fsc_stream_full_total").await, 1.0);
        let page = node.page().await;
        assert!(page.contains("stream FSC-carol") && page.contains("full for"), "{page}");
    }
    // Backed off: a few retries a second at most, not thousands (a measurement over a window).
    let before = metric(&cluster, "alice", "fsc_publish_retries_total").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let retried = metric(&cluster, "alice", "fsc_publish_retries_total").await - before;
    assert!(retried <= 8.0, "{retried} retries in 4 s");

    // Carol comes back and takes her part: everything drains, every sum succeeds everywhere.
    cluster.node_mut("carol").restart().await;
    let carol = cluster.node("carol").client();
    for chunk in waiting.chunks(SLICE) {
        let items: Vec<Value> = chunk.iter().map(|(id, i)| sum(&everyone, *id, i * 100)).collect();
        let answers = carol.submit_all(&items).await.unwrap();
        assert!(answers.iter().all(|a| a["status"] == "pending"), "{answers:?}");
    }
    for party in everyone {
        summed(&cluster, party, &waiting, 111, Duration::from_secs(120)).await;
    }
    // The receipts that follow the results go to carol's small stream too and may fill it once
    // more: each time it fills, a node warns once, and says so when it clears.
    for party in ["alice", "bob"] {
        let node = cluster.node(party);
        let episodes = || {
            let log = node.log();
            let count = |text: &str, level: &str| log.lines().filter(|l| l.contains(text) && l.contains(level)).count();
            (count(FULL, "WARN"), count(CLEARED, "INFO"), log)
        };
        eventually(
            Duration::from_secs(60),
            &format!("{party} sees carol's stream clear"),
            || async {
                let (full, cleared, _) = episodes();
                node.client().node().await.unwrap()["full_streams"] == json!([]) && full == cleared
            },
        )
        .await;
        assert_eq!(metric(&cluster, party, "fsc_streams_full").await, 0.0);
        let (full, cleared, log) = episodes();
        assert!(
            full >= 1 && full == cleared,
            "{party}: {full} full, {cleared} cleared:\n{log}"
        );
        assert_eq!(log.matches(FULL).count(), full, "only as warnings:\n{log}");
    }
}
