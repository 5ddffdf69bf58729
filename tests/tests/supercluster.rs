//! Two three-server clusters joined by gateways, written by `federation init --topology
//! supercluster`: the stream's three replicas are placed in `fsc-a` by a server tag; alice and
//! carol connect to servers of `fsc-a`, bob to one of `fsc-b`, so his messages cross the gateways.
//! Sums compute right; then alice's server dies mid-batch while it leads her inbox consumer, and
//! the operator moves the stream's leader as README says (a step-down request as `admin`):
//! computing goes on, and no node creates its inbox consumer again, since none was lost. A
//! consumer the operator deletes is created again by its node, once.

use fsc_e2e::{Cluster, ClusterOptions, Topology, assert_all_summed, eventually, random_sums};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SUCCEEDED: &str = "fsc_computations_finished_total{status=\"succeeded\"}";
const CREATED: &str = "fsc_inbox_consumer_created_total";

/// Answers `subject` as the operator, once the broker answers it without an error.
async fn ask(admin: &async_nats::Client, subject: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = tokio::time::timeout(Duration::from_secs(2), admin.request(subject.to_string(), "".into())).await;
        if let Ok(Ok(message)) = answer {
            let value: Value = serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
            if value.is_object() && value.get("error").is_none() {
                return value;
            }
        }
        assert!(Instant::now() < deadline, "{subject} not answered within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// When the broker created each party's inbox consumer.
async fn consumers_created(cluster: &Cluster, admin: &async_nats::Client) -> Vec<String> {
    let names = cluster.names();
    let mut created = Vec::new();
    for party in &cluster.parties {
        let subject = format!("$JS.API.CONSUMER.INFO.{}.{}", names.stream(), names.consumer(party));
        created.push(ask(admin, &subject).await["created"].as_str().unwrap().to_string());
    }
    created
}

async fn metric_everywhere(cluster: &Cluster, metric: &str) -> Vec<f64> {
    let mut values = Vec::new();
    for node in &cluster.nodes {
        values.push(node.client().metric(metric).await.unwrap_or(0.0));
    }
    values
}

/// Submits `n` sums at every party; returns what `assert_all_summed` checks.
async fn submit(cluster: &Cluster, n: usize, seed: u64) -> (Vec<uuid::Uuid>, Vec<f64>) {
    let (ids, per_node, sums) = random_sums(cluster, n, seed);
    for (node, items) in cluster.nodes.iter().zip(&per_node) {
        let answers = node.client().submit_batch(items).await.unwrap();
        assert!(answers.iter().all(|a| a["status"] == "pending"), "{answers:?}");
    }
    (ids, sums)
}

#[tokio::test]
async fn a_supercluster_computes_and_keeps_its_consumers_through_a_server_loss_and_a_step_down() {
    let mut cluster = Cluster::start_with(ClusterOptions {
        parties: 3,
        topology: Topology::Supercluster,
        ..Default::default()
    })
    .await;
    let stream = format!("$JS.API.STREAM.INFO.{}", cluster.names().stream());
    let admin = cluster.admin().await;
    let info = ask(&admin, &stream).await;
    assert_eq!(info["config"]["num_replicas"], 3, "{info}");
    assert_eq!(info["config"]["placement"]["tags"], json!(["cluster:fsc-a"]), "{info}");
    assert_eq!(info["cluster"]["name"], "fsc-a", "{info}");
    let bob = std::fs::read_to_string(cluster.path().join("bob/node.toml")).unwrap();
    assert!(
        bob.contains(&format!("nats_url = \"{}", cluster.servers[2].url())),
        "bob's node lists fsc-b1 first: {bob}"
    );

    let (ids, sums) = submit(&cluster, 200, 1).await;
    assert_all_summed(&cluster, &ids, &sums).await;
    let created = consumers_created(&cluster, &admin).await;
    assert_eq!(metric_everywhere(&cluster, CREATED).await, [1.0; 3]);

    // Alice's own server (fsc-a1, one of the stream's) dies while a batch is under way, taking
    // her connection and her consumer's leader at once (moved there first: a step-down request
    // may name the preferred server).
    let names = cluster.names();
    let alices = format!("{}.{}", names.stream(), names.consumer("alice"));
    let preferred = serde_json::to_vec(&json!({"placement": {"preferred": "fsc-a1"}})).unwrap();
    eventually(Duration::from_secs(30), "fsc-a1 leads alice's consumer", || async {
        let subject = format!("$JS.API.CONSUMER.LEADER.STEPDOWN.{alices}");
        let _ = admin.request(subject, preferred.clone().into()).await;
        ask(&admin, &format!("$JS.API.CONSUMER.INFO.{alices}")).await["cluster"]["leader"] == "fsc-a1"
    })
    .await;
    let (ids, sums) = submit(&cluster, 600, 2).await;
    eventually(Duration::from_secs(60), "the batch is under way", || async {
        metric_everywhere(&cluster, SUCCEEDED).await.iter().all(|n| *n >= 250.0)
    })
    .await;
    cluster.broker.kill();
    assert_all_summed(&cluster, &ids, &sums).await;
    cluster.broker.restart().unwrap();

    // The operator moves the stream's leader (README, "Broker topologies").
    let leader = ask(&admin, &stream).await["cluster"]["leader"].clone();
    let subject = format!("$JS.API.STREAM.LEADER.STEPDOWN.{}", cluster.names().stream());
    assert_eq!(ask(&admin, &subject).await["success"], true);
    eventually(Duration::from_secs(30), "another server leads the stream", || async {
        let info = ask(&admin, &stream).await;
        info["cluster"]["leader"].is_string() && info["cluster"]["leader"] != leader
    })
    .await;
    let (ids, sums) = submit(&cluster, 200, 3).await;
    assert_all_summed(&cluster, &ids, &sums).await;

    assert_eq!(
        metric_everywhere(&cluster, CREATED).await,
        [1.0; 3],
        "no inbox consumer was created again\n{}",
        cluster.logs()
    );
    assert_eq!(consumers_created(&cluster, &admin).await, created);

    // The operator deletes carol's consumer: her node finds it gone and creates it again.
    let carols = format!("{}.{}", names.stream(), names.consumer("carol"));
    ask(&admin, &format!("$JS.API.CONSUMER.DELETE.{carols}")).await;
    let (ids, sums) = submit(&cluster, 100, 4).await;
    assert_all_summed(&cluster, &ids, &sums).await;
    assert_eq!(metric_everywhere(&cluster, CREATED).await, [1.0, 1.0, 2.0]);
}
