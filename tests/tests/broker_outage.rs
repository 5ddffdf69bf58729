//! The broker goes away: readiness says so (and says so again when it is back), and SIGTERM stops
//! a node within its shutdown grace whatever the broker does, losing nothing.

use fsc_e2e::{Cluster, ClusterOptions, assert_all_summed, eventually};
use serde_json::json;
use std::time::{Duration, Instant};
use uuid::Uuid;

const GRACE_S: u64 = 2;
/// Time to exit after the grace: process teardown, on a busy machine.
const EXIT_MARGIN: Duration = Duration::from_secs(3);

fn options(parties: usize) -> ClusterOptions {
    ClusterOptions {
        parties,
        env: vec![("FSC_SHUTDOWN_GRACE_S".into(), GRACE_S.to_string())],
        ..Default::default()
    }
}

async fn broker_connected(client: &fsc_client::Client) -> bool {
    client.node().await.unwrap()["broker_connected"] == json!(true)
}

/// `/readyz`, `/v1/node` and `/metrics` turn unready when the broker dies and ready when it is
/// back. (They used to stay ready: the flag was set once and never cleared.)
#[tokio::test]
async fn readiness_follows_the_broker_both_ways() {
    let mut cluster = Cluster::start(2).await;
    let alice = cluster.nodes[0].client();
    assert!(alice.ready().await);
    assert!(broker_connected(&alice).await);

    cluster.broker.kill();
    eventually(Duration::from_secs(10), "alice turns unready", || alice_unready(&alice)).await;
    assert!(!broker_connected(&alice).await);
    assert_eq!(alice.metric("fsc_broker_connected").await.unwrap(), 0.0);

    cluster.broker.restart().unwrap();
    eventually(Duration::from_secs(20), "alice is ready again", || alice.ready()).await;
    assert!(broker_connected(&alice).await);
    assert_eq!(alice.metric("fsc_broker_connected").await.unwrap(), 1.0);
    let id = cluster.submit_sum(&[json!(1), json!(2)]).await;
    for view in cluster.finals(id, Duration::from_secs(60)).await {
        assert_eq!(view["output"]["result"]["sum"], json!(3.0), "{view}");
    }
}

async fn alice_unready(alice: &fsc_client::Client) -> bool {
    !alice.ready().await
}

/// A node started while the broker is down serves its API, is not ready, and stops on SIGTERM
/// within its grace with status 0. (It used to ignore SIGTERM until the broker came.)
#[tokio::test]
async fn sigterm_stops_a_node_that_never_reached_the_broker() {
    let mut cluster = Cluster::start_with(options(2)).await;
    cluster.broker.kill();
    let alice = cluster.node_mut("alice");
    alice.respawn();
    let client = alice.client();
    eventually(Duration::from_secs(30), "alice serves /healthz", || async {
        client.node().await.is_ok()
    })
    .await;
    assert!(!client.ready().await, "ready without a broker");
    let started = Instant::now();
    let status = alice.terminate(Duration::from_secs(GRACE_S) + EXIT_MARGIN);
    let status = status.unwrap_or_else(|| panic!("still running after {:?}\n{}", started.elapsed(), alice.log()));
    assert!(status.success(), "{status:?}\n{}", alice.log());
}

/// The broker dies, alice accepts a computation (its messages cannot be published) while a long
/// poll waits on her: SIGTERM stops her within the grace, and after the broker and alice are back
/// the outbox is published and the computation succeeds everywhere.
#[tokio::test]
async fn sigterm_without_a_broker_keeps_the_outbox_for_the_next_start() {
    let mut cluster = Cluster::start_with(options(3)).await;
    cluster.broker.kill();
    let id = Uuid::new_v4();
    assert_eq!(cluster.submit_at(0, id, json!(19)).await, 202);
    let poll = tokio::spawn({
        let client = cluster.nodes[0].client();
        async move { client.get(id, Duration::from_secs(60)).await }
    });
    eventually(Duration::from_secs(10), "alice's outbox holds her messages", || async {
        cluster.nodes[0].client().metric("fsc_outbox_pending").await.unwrap() == 2.0
    })
    .await;

    let alice = cluster.node_mut("alice");
    let started = Instant::now();
    let status = alice.terminate(Duration::from_secs(GRACE_S) + EXIT_MARGIN);
    let status = status.unwrap_or_else(|| panic!("still running after {:?}\n{}", started.elapsed(), alice.log()));
    assert!(status.success(), "{status:?}\n{}", alice.log());
    assert!(alice.log().contains("stay in the outbox"), "{}", alice.log());
    let _ = poll.await.unwrap();

    cluster.broker.restart().unwrap();
    cluster.node_mut("alice").restart().await;
    assert_eq!(cluster.submit_at(1, id, json!(5)).await, 202);
    assert_eq!(cluster.submit_at(2, id, json!(61)).await, 202);
    assert_all_summed(&cluster, &[id], &[85.0]).await;
}

/// `nats_url` may list several servers (of one NATS cluster): a node whose first server is down
/// connects to another, and computes.
#[tokio::test]
async fn a_node_whose_first_broker_url_is_down_connects_to_the_next() {
    let mut cluster = Cluster::start(2).await;
    // A port nothing listens on: bound, then released.
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let urls = format!("nats://{down},{}", cluster.broker.url());
    let alice = cluster.node_mut("alice");
    alice.set_env("FSC_NATS_URL", &urls);
    alice.restart().await;
    let id = cluster.submit_sum(&[json!(1), json!(2)]).await;
    for view in cluster.finals(id, Duration::from_secs(60)).await {
        assert_eq!(view["output"]["result"]["sum"], json!(3.0), "{view}");
    }
}
