//! Computations end to end: three real nodes and a real broker, through the v1 API.

use fsc_e2e::{Cluster, ClusterOptions, assert_all_summed, eventually, random_sums};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use uuid::Uuid;

const FINAL: Duration = Duration::from_secs(60);

#[tokio::test]
async fn the_tutorial_sum_is_85_at_every_party() {
    let cluster = Cluster::start(3).await;
    let id = cluster.submit_sum(&[json!(19), json!(5), json!(61)]).await;
    for view in cluster.finals(id, FINAL).await {
        assert_eq!(view["status"], "succeeded", "{view}\n{}", cluster.logs());
        assert_eq!(
            view["output"],
            json!({"inputs": 3, "result": {"samples": 3, "sum": 85.0}})
        );
        assert_eq!(view["parameters"], json!({"digits_after": 12, "digits_before": 12}));
        assert!(view["finished_at"].is_string());
    }
}

/// 200 computations submitted as one batch per node all succeed with the right sums, and their
/// messages travel in bundles: far fewer broker messages than messages.
#[tokio::test]
async fn a_batch_of_200_sums_succeeds_everywhere() {
    let cluster = Cluster::start(3).await;
    let (ids, per_node, sums) = random_sums(&cluster, 200, 1);
    for (node, items) in cluster.nodes.iter().zip(&per_node) {
        let results = node.client().submit_batch(items).await.unwrap();
        assert!(results.iter().all(|r| r["status"] == "pending"), "{results:?}");
    }
    assert_all_summed(&cluster, &ids, &sums).await;
    for node in &cluster.nodes {
        let client = node.client();
        let sent = client.metric("fsc_messages_sent_total").await.unwrap();
        let published = client.metric("fsc_broker_messages_published_total").await.unwrap();
        assert_eq!(sent, 400.0, "{}: one message to each peer per sum", node.id);
        assert!(
            (2.0..=20.0).contains(&published),
            "{}: {sent} messages in {published} broker messages",
            node.id
        );
    }
}

/// Vectors and parameters travel to every party: SecureSum over lists with digits_after = 2.
#[tokio::test]
async fn list_inputs_and_parameters_reach_every_party() {
    let cluster = Cluster::start(3).await;
    let id = Uuid::new_v4();
    let inputs = [json!([1.239, 10]), json!(2.345), json!([-0.999])];
    for (node, input) in cluster.nodes.iter().zip(inputs) {
        let mut request = cluster.sum_request(id, input);
        request["parameters"] = json!({"digits_after": 2});
        let answer = node.client().submit(&request).await.unwrap();
        assert_eq!(answer.status.as_u16(), 202, "{}", answer.body);
    }
    for view in cluster.finals(id, FINAL).await {
        assert_eq!(view["output"]["result"], json!({"samples": 4, "sum": 12.58}), "{view}");
    }
}

/// One party with bad input gets a 400; every other party reports `failed` with that reason,
/// within seconds, whether it submitted before or after.
#[tokio::test]
async fn bad_input_at_one_party_fails_the_computation_everywhere_quickly() {
    let cluster = Cluster::start(3).await;
    let id = Uuid::new_v4();
    let (alice, bob, carol) = (
        cluster.nodes[0].client(),
        cluster.nodes[1].client(),
        cluster.nodes[2].client(),
    );
    assert_eq!(cluster.submit_at(0, id, json!(1)).await, 202);
    let started = Instant::now();
    let rejected = bob.submit(&cluster.sum_request(id, json!("five"))).await.unwrap();
    assert_eq!(rejected.status.as_u16(), 400);
    assert_eq!(rejected.body["code"], "invalid_input", "{}", rejected.body);
    assert!(
        rejected.body["detail"].as_str().unwrap().contains("a string"),
        "{}",
        rejected.body
    );

    let at_alice = alice.wait_final(id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(at_alice["status"], "failed", "{at_alice}");
    assert_eq!(at_alice["error"]["party"], "bob");
    assert_eq!(at_alice["error"]["code"], "invalid_input");
    // The detail (which may quote bob's input) stays with bob's client.
    assert_eq!(
        at_alice["error"]["message"], "bob's node refused its client's input",
        "{at_alice}"
    );
    // carol submits after the failure, once her node has bob's abort (alice may have it first).
    eventually(Duration::from_secs(10), "bob's abort at carol", || async {
        carol
            .get(id, Duration::ZERO)
            .await
            .is_ok_and(|view| view["status"] == "failed")
    })
    .await;
    let late = carol.submit(&cluster.sum_request(id, json!(3))).await.unwrap();
    assert_eq!(late.body["status"], "failed", "{}", late.body);
    let at_carol = carol.wait_final(id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(at_carol["error"]["code"], "invalid_input", "{at_carol}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let at_bob = bob.wait_final(id, Duration::from_secs(1)).await.unwrap();
    assert_eq!(at_bob["status"], "failed");
}

/// Parties that disagree on parameters fail with a clear error instead of computing garbage.
#[tokio::test]
async fn a_definition_mismatch_fails_every_party() {
    let cluster = Cluster::start(3).await;
    let id = Uuid::new_v4();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let mut request = cluster.sum_request(id, json!(i));
        if i == 2 {
            request["parameters"] = json!({"digits_after": 2});
        }
        assert_eq!(node.client().submit(&request).await.unwrap().status.as_u16(), 202);
    }
    for view in cluster.finals(id, Duration::from_secs(10)).await {
        assert_eq!(view["status"], "failed", "{view}");
        let code = view["error"]["code"].as_str().unwrap();
        assert_eq!(code, "definition_mismatch", "{view}");
    }
}

/// A computation whose peers never submit fails at its deadline: the peers' nodes, told by
/// alice's, fail it for everybody, naming themselves, and keep the failure for their clients.
#[tokio::test]
async fn a_deadline_ends_a_computation_that_peers_never_join() {
    let cluster = Cluster::start(3).await;
    let id = Uuid::new_v4();
    let mut request = cluster.sum_request(id, json!(1));
    request["deadline_s"] = json!(1);
    let alice = cluster.nodes[0].client();
    assert_eq!(alice.submit(&request).await.unwrap().status.as_u16(), 202);
    let view = alice.wait_final(id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(view["status"], "failed");
    assert_eq!(view["error"]["code"], "deadline_exceeded");
    let party = view["error"]["party"].as_str().unwrap();
    assert!(party == "bob" || party == "carol", "{view}");
    let message = view["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(party) && message.contains("had not joined"),
        "{message}"
    );
    // bob's node failed it when alice's deadline passed, so his client is not left waiting.
    let bob = cluster.nodes[1].client();
    let late = bob.submit(&cluster.sum_request(id, json!(2))).await.unwrap();
    let view = bob.wait_final(id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(view["status"], "failed", "{}: {view}", late.body);
    assert_eq!(view["error"]["code"], "deadline_exceeded", "{view}");
}

/// Envelopes larger than the chunk size travel in pieces and are reassembled.
#[tokio::test]
async fn large_messages_are_chunked_and_reassembled() {
    let cluster = Cluster::start_with(ClusterOptions {
        parties: 3,
        env: vec![("FSC_MAX_CHUNK_BYTES".into(), "100".into())],
        ..Default::default()
    })
    .await;
    let id = cluster.submit_sum(&[json!(1.5), json!(2.5), json!(3)]).await;
    for view in cluster.finals(id, FINAL).await {
        assert_eq!(
            view["output"]["result"]["sum"],
            json!(7.0),
            "{view}\n{}",
            cluster.logs()
        );
    }
}

/// SecureSum for 2 to 5 parties, each with its own federation.
#[tokio::test]
async fn sums_work_for_2_to_5_parties() {
    for parties in [2, 5] {
        let cluster = Cluster::start(parties).await;
        let inputs: Vec<Value> = (0..parties).map(|i| json!(i as i64 * 10 - 7)).collect();
        let id = cluster.submit_sum(&inputs).await;
        let want: i64 = (0..parties as i64).map(|i| i * 10 - 7).sum();
        for view in cluster.finals(id, FINAL).await {
            assert_eq!(view["output"]["result"]["sum"].as_f64(), Some(want as f64), "{view}");
            assert_eq!(view["output"]["inputs"], json!(parties));
        }
    }
}
