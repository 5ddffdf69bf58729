//! Receipts end to end (README, "Accountability"): every party of a computation signs how it
//! ended and sends the signature to the others; `fsc audit receipt` fetches a node's receipt and
//! `fsc audit verify-receipt` checks it offline with the roster alone, and fails on a forged or
//! missing signature or a changed output. A node killed right after its result still completes
//! every receipt once restarted: its signature was committed with the result, its messages wait
//! in the outbox.

use fsc_client::Client;
use fsc_e2e::{Cluster, ClusterOptions, clients_env, eventually, fsc_bin, output_text};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use uuid::Uuid;

const FINAL: Duration = Duration::from_secs(60);
const PARTIES: [&str; 3] = ["alice", "bob", "carol"];

fn config_of(cluster: &Cluster, party: &str) -> PathBuf {
    cluster.path().join(party).join("node.toml")
}

/// Waits until `party`'s receipt of `id` holds every party's signature, agreeing.
async fn complete_at(cluster: &Cluster, party: &str, id: Uuid) {
    let client = cluster.node(party).client();
    eventually(FINAL, &format!("{party}'s receipt of {id} complete"), || async {
        client.receipt(id).await.is_ok_and(|r| r["complete"] == true)
    })
    .await;
}

/// `fsc audit receipt ID --node URL > <dir>/<party>.json`; returns the file.
async fn fetch(cluster: &Cluster, party: &str, id: Uuid) -> PathBuf {
    let output = tokio::process::Command::new(fsc_bin())
        .args(["audit", "receipt", &id.to_string(), "--node", &cluster.node(party).url])
        .output()
        .await
        .expect("run fsc audit receipt");
    assert!(output.status.success(), "{}", output_text(&output));
    let file = cluster.path().join(format!("receipt-{party}.json"));
    std::fs::write(&file, &output.stdout).expect("write the receipt");
    file
}

/// `fsc audit verify-receipt FILE --roster federation.toml`.
async fn verify(cluster: &Cluster, file: &Path) -> std::process::Output {
    tokio::process::Command::new(fsc_bin())
        .args(["audit", "verify-receipt"])
        .arg(file)
        .arg("--roster")
        .arg(cluster.path().join("federation.toml"))
        .output()
        .await
        .expect("run fsc audit verify-receipt")
}

/// Writes `receipt` changed by `change` next to the cluster's files and verifies it: the check
/// must fail (exit code 3) naming `problem`.
async fn tampered_fails(
    cluster: &Cluster,
    receipt: &Value,
    name: &str,
    change: impl FnOnce(&mut Value),
    problem: &str,
) {
    let mut tampered = receipt.clone();
    change(&mut tampered);
    let file = cluster.path().join(format!("tampered-{name}.json"));
    std::fs::write(&file, serde_json::to_vec_pretty(&tampered).unwrap()).unwrap();
    let output = verify(cluster, &file).await;
    let text = output_text(&output);
    assert_eq!(output.status.code(), Some(3), "{name}: {text}");
    assert!(text.contains(problem), "{name}: expected {problem:?} in {text}");
}

/// A three-party sum: each node's receipt holds all three signatures over one statement and
/// verifies offline with the roster alone; a changed output, a forged signature and a missing
/// one each fail verification, named.
#[tokio::test]
async fn every_nodes_receipt_verifies_offline_and_a_tampered_one_fails() {
    let cluster = Cluster::start(3).await;
    let id = cluster.submit_sum(&[json!(19), json!(5), json!(61)]).await;
    for view in cluster.finals(id, FINAL).await {
        assert_eq!(view["status"], "succeeded", "{view}\n{}", cluster.logs());
    }
    let mut statements = Vec::new();
    for party in PARTIES {
        complete_at(&cluster, party, id).await;
        let file = fetch(&cluster, party, id).await;
        let output = verify(&cluster, &file).await;
        let text = output_text(&output);
        assert!(output.status.success(), "{party}: {text}");
        for signer in PARTIES {
            assert!(text.contains(&format!("{signer}: signed succeeded")), "{party}: {text}");
        }
        let receipt: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(receipt["node"], party);
        assert_eq!(receipt["output"]["result"]["sum"], 85.0);
        statements.push(receipt["statement_digest"].clone());
    }
    assert!(statements.iter().all(|s| *s == statements[0]), "{statements:?}");
    // Reading a receipt is in the audit log, as a read with the next transaction.
    eventually(FINAL, "alice's audit log records the receipt's read", || async {
        let output = tokio::process::Command::new(fsc_bin())
            .args(["audit", "log", "--config"])
            .arg(config_of(&cluster, "alice"))
            .output()
            .await
            .expect("run fsc audit log");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .any(|e| e["action"] == "receipt" && e["computation"] == id.to_string())
    })
    .await;

    let receipt: Value = serde_json::from_slice(&std::fs::read(fetch(&cluster, "alice", id).await).unwrap()).unwrap();
    tampered_fails(
        &cluster,
        &receipt,
        "output",
        |r| r["output"]["result"]["sum"] = json!(86.0),
        "the output does not match the outcome digest",
    )
    .await;
    let carols = receipt["signatures"][2]["signature"].clone();
    tampered_fails(
        &cluster,
        &receipt,
        "forged",
        |r| r["signatures"][1]["signature"] = carols,
        "bob: the signature does not verify",
    )
    .await;
    tampered_fails(
        &cluster,
        &receipt,
        "missing",
        |r| r["signatures"][2] = json!({"status": "missing", "party": "carol"}),
        "carol: signature missing",
    )
    .await;
}

/// bob is killed with SIGKILL as soon as his result is out, before or while his signature goes
/// to the others; after his restart every node's receipt is complete, and bob's verifies.
#[tokio::test]
async fn a_node_killed_right_after_its_result_still_completes_every_receipt() {
    let mut cluster = Cluster::start(3).await;
    let id = cluster.submit_sum(&[json!(1), json!(2), json!(3)]).await;
    let bob = cluster.node("bob").client();
    let view = bob.wait_final(id, FINAL).await.expect("bob's result");
    cluster.node_mut("bob").kill();
    assert_eq!(view["status"], "succeeded", "{view}");
    // His own signature was committed with his result.
    let store = fsc_node::config::NodeConfig::load(&config_of(&cluster, "bob"), |_| None)
        .expect("bob's node.toml")
        .store;
    let conn = rusqlite::Connection::open_with_flags(&store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let signed: i64 = conn
        .query_row(
            "SELECT count(*) FROM receipts WHERE computation = ? AND party = 'bob'",
            [id.to_string()],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(signed, 1, "bob's signature is stored with his result");
    drop(conn);
    cluster.node_mut("bob").restart().await;
    for party in PARTIES {
        complete_at(&cluster, party, id).await;
    }
    let output = verify(&cluster, &fetch(&cluster, "bob", id).await).await;
    assert!(output.status.success(), "{}", output_text(&output));
}

/// A failure is signed too, by its reason code: bob's node refuses his input, alice's fails on
/// his abort, and both receipts hold both signatures over `failed` / `invalid_input`.
#[tokio::test]
async fn a_failed_computation_has_a_receipt_signed_by_its_reason() {
    let cluster = Cluster::start(2).await;
    let id = Uuid::new_v4();
    assert_eq!(cluster.submit_at(0, id, json!(1)).await, 202);
    assert_eq!(cluster.submit_at(1, id, json!("five")).await, 400);
    for party in ["alice", "bob"] {
        complete_at(&cluster, party, id).await;
        let file = fetch(&cluster, party, id).await;
        let receipt: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(
            (&receipt["outcome"], &receipt["reason"]),
            (&json!("failed"), &json!("invalid_input"))
        );
        let output = verify(&cluster, &file).await;
        assert!(output.status.success(), "{party}: {}", output_text(&output));
    }
}

/// A computation that has not ended has no receipt yet (409); one that does not exist is 404.
#[tokio::test]
async fn a_running_computation_has_no_receipt_yet() {
    let cluster = Cluster::start(2).await;
    let id = Uuid::new_v4();
    assert_eq!(cluster.submit_at(0, id, json!(1)).await, 202);
    let client = cluster.nodes[0].client();
    let running = client.receipt(id).await.expect_err("no receipt yet").to_string();
    assert!(running.contains("409"), "{running}");
    let unknown = client.receipt(Uuid::new_v4()).await.expect_err("unknown").to_string();
    assert!(unknown.contains("404"), "{unknown}");
}

/// A receipt is read as its computation is: the submitting client and an admin may, another
/// client finds none (404, as for a computation it may not read).
#[tokio::test]
async fn only_who_may_read_the_computation_reads_its_receipt() {
    let cluster = Cluster::start_with(ClusterOptions {
        parties: 2,
        env: vec![clients_env(&[
            ("app", "token-app", false),
            ("other", "token-other", false),
            ("ops", "token-ops", true),
        ])],
        ..Default::default()
    })
    .await;
    let at = |node: usize, token: &str| Client::new(&cluster.nodes[node].url, Some(token.to_string()));
    let id = Uuid::new_v4();
    for node in 0..2 {
        let answer = at(node, "token-app")
            .submit(&cluster.sum_request(id, json!(node)))
            .await
            .unwrap();
        assert_eq!(answer.status.as_u16(), 202, "{}", answer.body);
    }
    let app = at(0, "token-app");
    eventually(FINAL, "alice's receipt complete for its client", || async {
        app.receipt(id).await.is_ok_and(|r| r["complete"] == true)
    })
    .await;
    assert!(at(0, "token-ops").receipt(id).await.is_ok());
    let refused = at(0, "token-other")
        .receipt(id)
        .await
        .expect_err("another client's")
        .to_string();
    assert!(refused.contains("404"), "{refused}");
}
