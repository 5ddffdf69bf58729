//! Cancelling a computation: it fails with `cancelled` here and, through a signed abort, at
//! every other party, whether they submitted before or after.

use fsc_e2e::{Cluster, eventually, fsc_bin};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

const FINAL: Duration = Duration::from_secs(60);

/// alice's client cancels a computation that alice and bob have joined and carol has not: it
/// fails at once at alice, bob learns it from alice's abort, and carol's later submission finds
/// it failed. A second cancel answers the same; a computation that succeeded cannot be cancelled.
#[tokio::test]
async fn a_cancelled_computation_fails_at_every_party() {
    let cluster = Cluster::start(3).await;
    let id = Uuid::new_v4();
    assert_eq!(cluster.submit_at(0, id, json!(1)).await, 202);
    assert_eq!(cluster.submit_at(1, id, json!(2)).await, 202);
    let alice = cluster.nodes[0].client();
    let view = alice.cancel(id).await.unwrap();
    assert_eq!(view["status"], "failed", "{view}");
    assert_eq!(view["error"]["code"], "cancelled", "{view}");
    assert_eq!(
        alice.cancel(id).await.unwrap(),
        view,
        "cancelling again answers the same"
    );

    let bob = cluster.nodes[1].client().wait_final(id, FINAL).await.unwrap();
    assert_eq!(
        (bob["error"]["code"].as_str(), bob["error"]["party"].as_str()),
        (Some("cancelled"), Some("alice")),
        "{bob}"
    );
    // carol's client submits once her node has alice's abort (bob may have had it first).
    let carol = cluster.nodes[2].client();
    eventually(FINAL, "alice's abort at carol", || async {
        carol
            .get(id, Duration::ZERO)
            .await
            .is_ok_and(|view| view["status"] == "failed")
    })
    .await;
    assert_eq!(cluster.submit_at(2, id, json!(3)).await, 200);
    let carol = cluster.nodes[2].client().wait_final(id, FINAL).await.unwrap();
    assert_eq!(carol["error"]["code"], "cancelled", "{carol}");

    let done = cluster.submit_sum(&[json!(1), json!(2), json!(3)]).await;
    alice.wait_final(done, FINAL).await.unwrap();
    let error = alice.cancel(done).await.unwrap_err().to_string();
    assert!(error.contains("answered 409"), "{error}");
    let error = alice.cancel(Uuid::new_v4()).await.unwrap_err().to_string();
    assert!(error.contains("answered 404"), "{error}");
}

/// `fsc cancel` does the same from the command line.
#[tokio::test]
async fn fsc_cancel_cancels() {
    let cluster = Cluster::start(2).await;
    let id = Uuid::new_v4();
    assert_eq!(cluster.submit_at(1, id, json!(2)).await, 202);
    let output = tokio::process::Command::new(fsc_bin())
        .args(["cancel", "--node", &cluster.nodes[1].url, &id.to_string()])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["error"]["code"], "cancelled", "{printed}");
    let alice = cluster.nodes[0].client();
    eventually(FINAL, "bob's abort at alice", || async {
        alice
            .get(id, Duration::ZERO)
            .await
            .is_ok_and(|view| view["status"] == "failed")
    })
    .await;
    assert_eq!(cluster.submit_at(0, id, json!(1)).await, 200);
    let alice = cluster.nodes[0].client().wait_final(id, FINAL).await.unwrap();
    assert_eq!(alice["error"]["party"], "bob", "{alice}");
}
