//! The audit log (README, "Accountability"): every API action and every computation's start and
//! end is one entry, with the API client that asked, read back with `fsc audit log`; `fsc audit
//! verify` checks the hash chain, and names the entry a changed byte broke.

use fsc_client::Client;
use fsc_e2e::{Cluster, ClusterOptions, Representations, clients_env, eventually, fsc_bin, output_text};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use uuid::Uuid;

const FINAL: Duration = Duration::from_secs(60);

/// Every node's clients: an application and an admin.
fn clients() -> (String, String) {
    clients_env(&[("app", "token-app", false), ("ops", "token-ops", true)])
}

fn config_of(cluster: &Cluster, party: &str) -> PathBuf {
    cluster.path().join(party).join("node.toml")
}

/// `fsc audit <args> --config <party's node.toml>`.
async fn fsc_audit(cluster: &Cluster, party: &str, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(fsc_bin())
        .arg("audit")
        .args(args)
        .arg("--config")
        .arg(config_of(cluster, party))
        .output()
        .await
        .expect("run fsc audit")
}

/// The party's audit log, as `fsc audit log` prints it.
async fn audit_log(cluster: &Cluster, party: &str) -> Vec<Value> {
    let output = fsc_audit(cluster, party, &["log"]).await;
    assert!(output.status.success(), "{}", output_text(&output));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

/// The entries of one action on one computation (`None`: entries without a computation).
fn entries<'a>(log: &'a [Value], action: &str, computation: Option<Uuid>) -> Vec<&'a Value> {
    let computation = computation.map(|id| id.to_string());
    log.iter()
        .filter(|e| e["action"] == action && e["computation"].as_str() == computation.as_deref())
        .collect()
}

/// The one entry of an action on a computation, asserting there is exactly one, by `client`.
fn once<'a>(log: &'a [Value], action: &str, computation: Option<Uuid>, client: Option<&str>) -> &'a Value {
    let found = entries(log, action, computation);
    assert_eq!(found.len(), 1, "{action} of {computation:?} once: {log:#?}");
    assert_eq!(found[0]["client"].as_str(), client, "{action}: {}", found[0]);
    found[0]
}

/// Waits until the party's log records that `id` finished (without reading it through the API,
/// which would be recorded itself).
async fn finished_at(cluster: &Cluster, party: &str, id: Uuid) {
    eventually(FINAL, &format!("{id} finished at {party}"), || async {
        !entries(&audit_log(cluster, party).await, "computation_finished", Some(id)).is_empty()
    })
    .await;
}

/// The store file of a party, as its node.toml names it.
fn store_of(cluster: &Cluster, party: &str) -> PathBuf {
    fsc_node::config::NodeConfig::load(&config_of(cluster, party), |_| None)
        .expect("the party's node.toml")
        .store
}

/// Changes one byte of entry `seq`'s client name, as someone with the store file could: past
/// the table's append-only triggers, with a real SQLite write.
fn change_a_byte(store: &Path, seq: i64) {
    let conn = rusqlite::Connection::open(store).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.execute_batch("DROP TRIGGER IF EXISTS audit_append_only_update")
        .unwrap();
    let changed = conn
        .execute(
            "UPDATE audit SET client = 'x' || substr(client, 2) WHERE seq = ?",
            [seq],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

/// One of each action through both APIs at alice, each found once in her log with the client
/// that asked; bob's log has his own; the chain verifies until a byte changes, and the failure
/// names that entry. A restart with the same clients and policy records nothing, with new
/// clients one entry.
#[tokio::test]
async fn every_action_is_recorded_once_with_its_client_and_the_chain_names_a_changed_entry() {
    let mut cluster = Cluster::start_with(ClusterOptions {
        parties: 2,
        env: vec![clients()],
        ..Default::default()
    })
    .await;
    let at = |node: usize, token: &str| Client::new(&cluster.nodes[node].url, Some(token.to_string()));
    let (app, ops, bob_app) = (at(0, "token-app"), at(0, "token-ops"), at(1, "token-app"));

    // The node recorded its clients and policy when it first started.
    let log = audit_log(&cluster, "alice").await;
    let clients_entry = once(&log, "clients_changed", None, None);
    assert_eq!(clients_entry["detail"]["clients"][0]["name"], "app", "{clients_entry}");
    once(&log, "policy_changed", None, None);

    // v1: a submission, then one read of its result.
    let summed = Uuid::new_v4();
    assert_eq!(
        app.submit(&cluster.sum_request(summed, json!(19)))
            .await
            .unwrap()
            .status,
        202
    );
    assert_eq!(
        bob_app
            .submit(&cluster.sum_request(summed, json!(5)))
            .await
            .unwrap()
            .status,
        202
    );
    finished_at(&cluster, "alice", summed).await;
    let view = app.get(summed, Duration::ZERO).await.unwrap();
    assert_eq!(view["output"]["result"]["sum"], json!(24.0), "{view}");

    // A batch: one item accepted (then cancelled by the admin), one refused.
    let (cancelled, refused) = (Uuid::new_v4(), Uuid::new_v4());
    let mut unknown_party = cluster.sum_request(refused, json!(1));
    unknown_party["parties"] = json!(["alice", "mallory"]);
    let results = app
        .submit_batch(&[cluster.sum_request(cancelled, json!(1)), unknown_party])
        .await
        .unwrap();
    assert_eq!(results[0]["status"], "pending", "{results:?}");
    assert!(results[1]["error"].is_object(), "{results:?}");
    let view = ops.cancel(cancelled).await.unwrap();
    assert_eq!(view["error"]["message"], "cancelled by client ops", "{view}");

    // A listing by the admin shows the finished computations.
    ops.list().await.unwrap();

    // The federatedsecure API: a task at both nodes, its result downloaded at alice.
    let task_id = Uuid::new_v4();
    let representations = |node: usize| Representations::new(&cluster.nodes[node].url, Some("token-app"));
    let alice_fs = representations(0);
    let (task, status, _) = alice_fs.start_task_as(&cluster.parties, 0, task_id, json!(61)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, status, _) = representations(1)
        .start_task_as(&cluster.parties, 1, task_id, json!(2))
        .await;
    assert_eq!(status, StatusCode::OK);
    finished_at(&cluster, "alice", task_id).await;
    let (_, result) = alice_fs.call(&task, "result", json!({})).await;
    let result = result["uuid"].as_str().expect("a result once finished").to_string();
    let (status, downloaded) = alice_fs
        .send(reqwest::Method::GET, &format!("/representation/{result}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{downloaded}");
    assert_eq!(downloaded["object"]["result"]["sum"], json!(63.0), "{downloaded}");

    // Reads are recorded with the runtime's next transaction: within its next tick.
    eventually(FINAL, "the download recorded", || async {
        !entries(&audit_log(&cluster, "alice").await, "download", Some(task_id)).is_empty()
    })
    .await;
    let log = audit_log(&cluster, "alice").await;
    let submitted = once(&log, "submit", Some(summed), Some("app"));
    assert_eq!(
        submitted["detail"],
        json!({"api": "v1", "status": "pending", "created": true})
    );
    let started = once(&log, "computation_started", Some(summed), Some("app"));
    assert_eq!(started["detail"]["parties"], json!(["alice", "bob"]), "{started}");
    assert_eq!(
        started["detail"]["digest"].as_str().map(str::len),
        Some(64),
        "{started}"
    );
    let finished = once(&log, "computation_finished", Some(summed), Some("app"));
    assert_eq!(finished["detail"]["outcome"], "succeeded", "{finished}");
    once(&log, "read", Some(summed), Some("app"));

    assert_eq!(
        once(&log, "submit", Some(cancelled), Some("app"))["detail"]["api"],
        "v1_batch"
    );
    let refusal = once(&log, "submit", Some(refused), Some("app"));
    assert_eq!(refusal["detail"]["refused"], "unknown_party", "{refusal}");
    let cancel = once(&log, "cancel", Some(cancelled), Some("ops"));
    assert_eq!(cancel["detail"], json!({"reason": "cancelled", "outcome": "cancelled"}));
    let ended = once(&log, "computation_finished", Some(cancelled), Some("app"));
    assert_eq!(ended["detail"]["reason"], "cancelled", "{ended}");

    let listed = once(&log, "list", None, Some("ops"));
    let shown = listed["detail"]["computations"].as_array().unwrap();
    assert!(shown.contains(&json!(summed.to_string())), "{listed}");

    let task_submit = once(&log, "submit", Some(task_id), Some("app"));
    assert_eq!(task_submit["detail"]["api"], "federatedsecure", "{task_submit}");
    once(&log, "download", Some(task_id), Some("app"));
    // No entry holds an input or an output: details name, count and digest only.
    for entry in &log {
        let detail = entry["detail"].to_string();
        assert!(
            !["input", "output", "result", "sum"].iter().any(|w| detail.contains(w)),
            "{entry}"
        );
    }

    // Bob's node keeps its own log, of its own client's actions.
    let bob = audit_log(&cluster, "bob").await;
    once(&bob, "submit", Some(summed), Some("app"));
    once(&bob, "computation_finished", Some(summed), Some("app"));

    // --client and --since filter.
    let output = fsc_audit(&cluster, "alice", &["log", "--client", "ops"]).await;
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.lines().count() == 2 && !text.contains("\"client\":\"app\""),
        "{text}"
    );
    let output = fsc_audit(&cluster, "alice", &["log", "--since", "2999-01-01T00:00:00Z"]).await;
    assert!(
        output.status.success() && output.stdout.is_empty(),
        "{}",
        output_text(&output)
    );

    // The logs and the operator page say who, too.
    let node_log = cluster.nodes[0].log();
    assert!(
        node_log.lines().any(|l| l.contains("computation started")
            && l.contains(&summed.to_string())
            && l.contains("client=\"app\"")),
        "{node_log}"
    );

    // A restart with the same clients and policy records none; new clients are recorded once.
    let before = log.last().unwrap()["seq"].as_i64().unwrap();
    cluster.nodes[0].restart().await;
    let after = audit_log(&cluster, "alice").await;
    assert!(entries(&after, "clients_changed", None).len() == 1, "{after:#?}");
    cluster.nodes[0].set_env(
        "FSC_CLIENTS",
        &clients_env(&[
            ("app", "token-app", false),
            ("ops", "token-ops", true),
            ("dpo", "t", true),
        ])
        .1,
    );
    cluster.nodes[0].restart().await;
    let after = audit_log(&cluster, "alice").await;
    let changes = entries(&after, "clients_changed", None);
    assert_eq!(changes.len(), 2, "{after:#?}");
    assert!(changes[1]["seq"].as_i64().unwrap() > before);
    assert_eq!(entries(&after, "policy_changed", None).len(), 1, "{after:#?}");

    // The chain verifies; a changed byte breaks it at that entry, and verify says which.
    let output = fsc_audit(&cluster, "alice", &["verify"]).await;
    assert!(output.status.success(), "{}", output_text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("audit log intact"));
    let victim = cancel["seq"].as_i64().unwrap();
    change_a_byte(&store_of(&cluster, "alice"), victim);
    let output = fsc_audit(&cluster, "alice", &["verify"]).await;
    assert_eq!(output.status.code(), Some(3), "{}", output_text(&output));
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains(&format!("broken at entry {victim}:")), "{said}");
    // A copy verifies offline, and breaks the same way (--store).
    let copy = cluster.path().join("copy.sqlite");
    let conn = rusqlite::Connection::open(store_of(&cluster, "alice")).unwrap();
    conn.execute("VACUUM INTO ?", [copy.to_str().unwrap()]).unwrap();
    let output = tokio::process::Command::new(fsc_bin())
        .args(["audit", "verify", "--store"])
        .arg(&copy)
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", output_text(&output));
}

/// With `audit_retention_s`, the node's sweep prunes old entries, never the last one, and the
/// rest of the chain verifies from the anchor the pruning left; entries written later follow it.
#[tokio::test]
async fn pruned_audit_entries_leave_a_chain_that_verifies_from_its_anchor() {
    let cluster = Cluster::start_with(ClusterOptions {
        parties: 2,
        env: vec![("FSC_AUDIT_RETENTION_S".into(), "1".into())],
        ..Default::default()
    })
    .await;
    let first = Uuid::new_v4();
    for party in 0..2 {
        assert_eq!(cluster.submit_at(party, first, json!(party)).await, 202);
    }
    // Its submit goes once older than a second (the finish, last, stays as the head).
    eventually(FINAL, "alice's submit of the first sum pruned", || async {
        let log = audit_log(&cluster, "alice").await;
        !entries(&log, "computation_finished", Some(first)).is_empty()
            && entries(&log, "submit", Some(first)).is_empty()
    })
    .await;
    let pruned = |output: &std::process::Output| String::from_utf8_lossy(&output.stdout).contains("after entry");
    let output = fsc_audit(&cluster, "alice", &["verify"]).await;
    assert!(output.status.success(), "{}", output_text(&output));
    assert!(pruned(&output), "{}", output_text(&output));
    let log = audit_log(&cluster, "alice").await;
    assert!(log[0]["seq"].as_i64().unwrap() > 1, "{log:#?}");

    let second = Uuid::new_v4();
    for party in 0..2 {
        assert_eq!(cluster.submit_at(party, second, json!(party)).await, 202);
    }
    for view in cluster.finals(second, FINAL).await {
        assert_eq!(view["status"], "succeeded", "{view}");
    }
    let output = fsc_audit(&cluster, "alice", &["verify"]).await;
    assert!(output.status.success(), "{}", output_text(&output));
    assert!(pruned(&output), "{}", output_text(&output));
}
