//! One outcome at every party. alice and bob submit sums with a short deadline; carol submits the
//! same sums at offsets swept across that deadline, when alice's and bob's nodes may be failing
//! them. Whatever the offset, every computation ends the same way at all three parties:
//! succeeded everywhere, or failed everywhere.

use fsc_client::Client;
use fsc_e2e::Cluster;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use uuid::Uuid;

const DEADLINE_S: u64 = 2;
/// carol's submission, relative to alice's deadline, in milliseconds.
const OFFSETS_MS: [i64; 5] = [-400, -100, 0, 100, 400];
const PER_OFFSET: usize = 400;

fn sums(cluster: &Cluster, ids: &[Uuid], input: i64) -> Vec<Value> {
    ids.iter()
        .map(|id| {
            let mut request = cluster.sum_request(*id, json!(input));
            request["deadline_s"] = json!(DEADLINE_S);
            request
        })
        .collect()
}

async fn statuses(client: &Client, ids: &[Uuid]) -> Vec<String> {
    let mut statuses = Vec::new();
    for id in ids {
        let view = client.wait_final(*id, Duration::from_secs(60)).await.unwrap();
        statuses.push(view["status"].as_str().unwrap().to_string());
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parties_end_a_computation_alike_whenever_the_last_one_joins() {
    let cluster = Cluster::start(3).await;
    let [alice, bob, carol] = ["alice", "bob", "carol"].map(|p| cluster.node(p).client());
    let mut tally = Vec::new();
    for offset in OFFSETS_MS {
        let ids: Vec<Uuid> = (0..PER_OFFSET).map(|_| Uuid::new_v4()).collect();
        let submitted = Instant::now();
        let (at_alice, at_bob) = (sums(&cluster, &ids, 1), sums(&cluster, &ids, 2));
        let (first, second) = tokio::join!(alice.submit_all(&at_alice), bob.submit_all(&at_bob));
        first.unwrap();
        second.unwrap();
        let at = Duration::from_millis((DEADLINE_S as i64 * 1000 + offset) as u64);
        tokio::time::sleep_until((submitted + at).into()).await;
        carol.submit_all(&sums(&cluster, &ids, 3)).await.unwrap();
        let (a, b, c) = tokio::join!(statuses(&alice, &ids), statuses(&bob, &ids), statuses(&carol, &ids));
        for (i, id) in ids.iter().enumerate() {
            assert!(
                a[i] == b[i] && b[i] == c[i],
                "offset {offset} ms: {id} ended {} at alice, {} at bob, {} at carol",
                a[i],
                b[i],
                c[i]
            );
        }
        let succeeded = a.iter().filter(|s| *s == "succeeded").count();
        tally.push((offset, succeeded));
    }
    // The sweep crosses the deadline: early ones all succeed, late ones all fail.
    assert_eq!(tally[0].1, PER_OFFSET, "{tally:?}");
    assert_eq!(tally[OFFSETS_MS.len() - 1].1, 0, "{tally:?}");
}
