//! Retention: finished computations are pruned after `retention_s` (or at once by `fsc gc`),
//! their ids are never accepted again, and the store stops growing.

use fsc_e2e::{Cluster, ClusterOptions, eventually, fsc_bin, random_sums};
use serde_json::json;
use std::time::Duration;

const FINAL: Duration = Duration::from_secs(60);

fn store_bytes(cluster: &Cluster, party: &str) -> (u64, u64) {
    let size = |f: &str| {
        std::fs::metadata(cluster.path().join(party).join(f))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    (size("fsc.sqlite"), size("fsc.sqlite-wal"))
}

/// With `retention_s = 1`, finished computations disappear from every node within seconds;
/// their ids are refused from then on, and the node goes on computing.
#[tokio::test]
async fn finished_computations_are_pruned_after_the_retention() {
    let cluster = Cluster::start_with(ClusterOptions {
        parties: 2,
        env: vec![("FSC_RETENTION_S".into(), "1".into())],
        ..Default::default()
    })
    .await;
    let (ids, per_node, _) = random_sums(&cluster, 20, 5);
    for (node, items) in cluster.nodes.iter().zip(&per_node) {
        node.client().submit_batch(items).await.unwrap();
    }
    for node in &cluster.nodes {
        let client = node.client();
        // Read from the metrics: the computations may be gone before a read of each.
        eventually(FINAL, "all 20 succeed", || async {
            client
                .metric("fsc_computations_finished_total{status=\"succeeded\"}")
                .await
                .unwrap()
                == 20.0
        })
        .await;
        eventually(Duration::from_secs(20), "every computation is pruned", || async {
            client.list().await.unwrap()["computations"] == json!([])
        })
        .await;
        let error = client.get(ids[0], Duration::ZERO).await.unwrap_err().to_string();
        assert!(error.contains("answered 404"), "{error}");
    }
    let again = cluster.nodes[0].client().submit(&per_node[0][0]).await.unwrap();
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(
        again.body["detail"].as_str().unwrap().contains("used before"),
        "{}",
        again.body
    );
    let id = cluster.submit_sum(&[json!(1), json!(2)]).await;
    for view in cluster.finals(id, FINAL).await {
        assert_eq!(view["output"]["result"]["sum"], json!(3.0), "{view}");
    }
}

/// `fsc gc --older-than 0` beside a running node prunes every finished computation at once and
/// resets the WAL; the node keeps working.
#[tokio::test]
async fn fsc_gc_prunes_at_once_beside_a_running_node() {
    let cluster = Cluster::start(2).await;
    let (ids, per_node, _) = random_sums(&cluster, 200, 6);
    for (node, items) in cluster.nodes.iter().zip(&per_node) {
        node.client().submit_batch(items).await.unwrap();
    }
    let alice = cluster.nodes[0].client();
    for id in &ids {
        alice.wait_final(*id, FINAL).await.unwrap();
    }
    let output = tokio::process::Command::new(fsc_bin())
        .args(["gc", "--older-than", "0", "--config"])
        .arg(cluster.path().join("alice/node.toml"))
        .output()
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.starts_with("pruned 200 computations"), "{printed}");
    let (_, wal) = store_bytes(&cluster, "alice");
    assert!(wal < 64 * 1024, "the WAL was reset: {wal} bytes");
    assert!(
        alice
            .get(ids[0], Duration::ZERO)
            .await
            .unwrap_err()
            .to_string()
            .contains("answered 404")
    );
    assert_eq!(
        cluster.nodes[1].client().get(ids[0], Duration::ZERO).await.unwrap()["status"],
        "succeeded"
    );
    let id = cluster.submit_sum(&[json!(1), json!(2)]).await;
    for view in cluster.finals(id, FINAL).await {
        assert_eq!(view["output"]["result"]["sum"], json!(3.0), "{view}");
    }
}

/// Bytes a retired id may keep in the store: a 36-character UUID and a timestamp in a b-tree
/// (about 50 bytes a row), with room for half-full pages.
const RETIRED_ID_BYTES: u64 = 100;

/// Bytes the audit log holds (retention never prunes it): its rows' bytes, twice, for half-full
/// pages.
fn audit_bytes(cluster: &Cluster, party: &str) -> u64 {
    let store = cluster.path().join(party).join("fsc.sqlite");
    let conn = rusqlite::Connection::open_with_flags(&store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let bytes: i64 = conn
        .query_row(
            "SELECT COALESCE(SUM(length(detail) + length(hash) + length(prev_hash) + length(action) \
             + COALESCE(length(computation), 0) + COALESCE(length(client), 0) + 16), 0) FROM audit",
            [],
            |row| row.get(0),
        )
        .unwrap();
    2 * bytes as u64
}

/// The store gives disk back: once the retention has pruned a few thousand sums, the database
/// and its WAL take at most twice a fresh store's bytes plus the retired ids and the audit log
/// (which retention keeps, every entry); the WAL is emptied while the node is idle, and a node
/// stopped cleanly leaves none.
#[tokio::test]
async fn a_pruned_store_gives_its_disk_back_and_keeps_no_wal_when_idle() {
    const SUMS: usize = 3000;
    let mut cluster = Cluster::start_with(ClusterOptions {
        parties: 2,
        env: vec![("FSC_RETENTION_S".into(), "5".into())],
        ..Default::default()
    })
    .await;
    let total = |(db, wal): (u64, u64)| db + wal;
    let fresh = total(store_bytes(&cluster, "alice"));
    let goal = 2 * fresh + SUMS as u64 * RETIRED_ID_BYTES;
    let (_, per_node, _) = random_sums(&cluster, SUMS, 8);
    for (node, items) in cluster.nodes.iter().zip(&per_node) {
        node.client().submit_batch(items).await.unwrap();
    }
    let alice = cluster.nodes[0].client();
    eventually(FINAL, "all sums succeed", || async {
        alice
            .metric("fsc_computations_finished_total{status=\"succeeded\"}")
            .await
            .unwrap()
            == SUMS as f64
    })
    .await;
    let grown = total(store_bytes(&cluster, "alice"));
    assert!(
        grown > 2 * goal,
        "the sums took {grown} bytes, too few to tell (goal {goal})"
    );
    eventually(
        Duration::from_secs(60),
        "pruned, the store shrinks to the goal",
        || async {
            alice.list().await.unwrap()["computations"] == json!([])
                && total(store_bytes(&cluster, "alice")) <= goal + audit_bytes(&cluster, "alice")
        },
    )
    .await;
    eventually(Duration::from_secs(10), "the idle node empties its WAL", || async {
        store_bytes(&cluster, "alice").1 == 0
    })
    .await;
    let store = cluster.path().join("alice").join("fsc.sqlite");
    let conn = rusqlite::Connection::open_with_flags(&store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let ended: i64 = conn
        .query_row(
            "SELECT count(*) FROM audit WHERE action = 'computation_finished'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(ended, SUMS as i64, "the audit log keeps what retention pruned");
    drop(conn);
    let (db, _) = store_bytes(&cluster, "alice");
    eprintln!("alice's store: {fresh} bytes fresh, {grown} after {SUMS} sums, {db} pruned (goal {goal})");

    // A clean stop leaves no WAL behind, even right after work.
    let id = cluster.submit_sum(&[json!(1), json!(2)]).await;
    alice.wait_final(id, FINAL).await.unwrap();
    let status = cluster.nodes[0].terminate(Duration::from_secs(20));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert_eq!(store_bytes(&cluster, "alice").1, 0, "the WAL after a clean stop");
}
