//! Many parties on one broker: sums among 10 and 20 parties go through an aggregator that
//! rotates with the computation (`fsc_simon::masks`), and a node killed mid-batch among six
//! parties (the aggregator of some of the sums) resumes with every sum right.

use fsc_e2e::{Cluster, assert_all_summed, random_sums};
use fsc_simon::sum::additive_sum::messages_per_sum;
use std::time::Duration;

const SENT: &str = "fsc_messages_sent_total";
const INVITES: &str = "fsc_invites_sent_total";

/// Submits `n` random sums at every party and checks every result at every party, and that
/// the nodes sent the documented number of messages per sum.
async fn sums_among(parties: usize, n: usize, seed: u64) {
    let cluster = Cluster::start(parties).await;
    let (ids, per_node, sums) = random_sums(&cluster, n, seed);
    let clients: Vec<_> = cluster.nodes.iter().map(|node| node.client()).collect();
    let submissions = clients
        .iter()
        .zip(&per_node)
        .map(|(client, items)| client.submit_batch(items));
    for result in futures::future::join_all(submissions).await {
        result.expect("batch accepted");
    }
    assert_all_summed(&cluster, &ids, &sums).await;
    // Invites go only to parties a computation still waits for after a while (a slow machine):
    // not the protocol's messages.
    let mut sent = 0.0;
    for client in &clients {
        sent += client.metric(SENT).await.unwrap() - client.metric(INVITES).await.unwrap();
    }
    assert_eq!(sent as usize, n * messages_per_sum(parties), "messages for {n} sums");
}

#[tokio::test]
async fn ten_parties_sum_through_a_rotating_aggregator() {
    sums_among(10, 40, 10).await;
}

#[tokio::test]
async fn twenty_parties_sum_on_one_broker() {
    sums_among(20, 20, 20).await;
}

/// Six parties, a 100-sum batch, erin killed with SIGKILL after accepting her part: she is the
/// aggregator of about a sixth of the sums and an ordinary party of the rest. After a restart,
/// every sum is right at every node.
#[tokio::test]
async fn an_aggregator_killed_mid_batch_resumes() {
    let mut cluster = Cluster::start(6).await;
    let (ids, per_node, sums) = random_sums(&cluster, 100, 6);
    for (node, items) in cluster.nodes.iter().zip(&per_node).take(5) {
        node.client().submit_batch(items).await.unwrap();
    }
    cluster.node_mut("erin").kill();
    cluster.nodes[5].client().submit_batch(&per_node[5]).await.unwrap();
    cluster.node_mut("erin").restart().await;
    assert_all_summed(&cluster, &ids, &sums).await;
    let finished = cluster.nodes[0]
        .client()
        .wait_final(ids[0], Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(finished["output"]["inputs"], 6);
}
