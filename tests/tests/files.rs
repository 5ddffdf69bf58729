//! What a node writes to disk is readable by its own user only.

use fsc_e2e::Cluster;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The SQLite store and its WAL and shared-memory files are 0600, like the key files (the store
/// used to be created 0644), and a store left readable by others is tightened at start.
#[tokio::test]
async fn the_store_and_its_wal_are_owner_only() {
    let mut cluster = Cluster::start(2).await;
    let id = cluster.submit_sum(&[json!(1), json!(2)]).await;
    cluster.finals(id, Duration::from_secs(60)).await;
    let dir = cluster.path().join("alice");
    for file in [
        "fsc.sqlite",
        "fsc.sqlite-wal",
        "fsc.sqlite-shm",
        "x25519.key",
        "ed25519.key",
        "nats.nk",
    ] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }

    cluster.node_mut("alice").kill();
    for file in ["fsc.sqlite", "fsc.sqlite-wal", "fsc.sqlite-shm"] {
        let path = dir.join(file);
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    cluster.node_mut("alice").restart().await;
    for file in ["fsc.sqlite", "fsc.sqlite-wal", "fsc.sqlite-shm"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file} after a restart");
    }
}
