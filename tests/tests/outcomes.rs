//! One outcome at every party. alice and bob submit sums with a short deadline; carol submits the
//! same sums at offsets swept across that deadline, when alice's and bob's nodes may be failing
//! them. Whatever the offset, every computation ends the same way at all three parties:
//! succeeded everywhere, or failed everywhere. Two rounds anchor the sweep whatever the load:
//! carol submitting with the others (all succeed), and once her node has failed them (all fail).

use fsc_client::Client;
use fsc_e2e::{Cluster, eventually};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use uuid::Uuid;

const DEADLINE_S: u64 = 2;
/// When carol submits.
#[derive(Debug, Clone, Copy)]
enum Join {
    /// With alice and bob.
    WithTheOthers,
    /// At this offset from alice's deadline, in milliseconds.
    At(i64),
    /// Once her node shows every computation failed (alice's and bob's `expire` notices came).
    AfterHerNodeFailedThem,
}
const ROUNDS: [Join; 7] = [
    Join::WithTheOthers,
    Join::At(-400),
    Join::At(-100),
    Join::At(0),
    Join::At(100),
    Join::At(400),
    Join::AfterHerNodeFailedThem,
];
const PER_ROUND: usize = 300;

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
    for join in ROUNDS {
        let ids: Vec<Uuid> = (0..PER_ROUND).map(|_| Uuid::new_v4()).collect();
        let submitted = Instant::now();
        let (at_alice, at_bob, at_carol) = (
            sums(&cluster, &ids, 1),
            sums(&cluster, &ids, 2),
            sums(&cluster, &ids, 3),
        );
        if let Join::WithTheOthers = join {
            let (first, second, third) = tokio::join!(
                alice.submit_all(&at_alice),
                bob.submit_all(&at_bob),
                carol.submit_all(&at_carol)
            );
            first.unwrap();
            second.unwrap();
            third.unwrap();
        } else {
            let (first, second) = tokio::join!(alice.submit_all(&at_alice), bob.submit_all(&at_bob));
            first.unwrap();
            second.unwrap();
            if let Join::At(offset) = join {
                let at = Duration::from_millis((DEADLINE_S as i64 * 1000 + offset) as u64);
                tokio::time::sleep_until((submitted + at).into()).await;
            } else {
                eventually(Duration::from_secs(60), "carol's node failed them all", || async {
                    for id in &ids {
                        let failed = carol
                            .get(*id, Duration::ZERO)
                            .await
                            .is_ok_and(|view| view["status"] == "failed");
                        if !failed {
                            return false;
                        }
                    }
                    true
                })
                .await;
            }
            carol.submit_all(&at_carol).await.unwrap();
        }
        let (a, b, c) = tokio::join!(statuses(&alice, &ids), statuses(&bob, &ids), statuses(&carol, &ids));
        for (i, id) in ids.iter().enumerate() {
            assert!(
                a[i] == b[i] && b[i] == c[i],
                "{join:?}: {id} ended {} at alice, {} at bob, {} at carol",
                a[i],
                b[i],
                c[i]
            );
        }
        let succeeded = a.iter().filter(|s| *s == "succeeded").count();
        tally.push((join, succeeded));
    }
    // The sweep crosses the deadline: the first round all succeeds, the last all fails.
    assert_eq!(tally[0].1, PER_ROUND, "{tally:?}");
    assert_eq!(tally[ROUNDS.len() - 1].1, 0, "{tally:?}");
}
