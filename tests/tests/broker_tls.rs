//! TLS to the broker: a private CA made here signs the broker's certificate and each node's
//! client certificate; the broker requires and verifies client certificates
//! (`tls { verify: true }`) besides the NKey. Nodes with `nats_ca_file`, `nats_client_cert` and
//! `nats_client_key` compute; a node without a client certificate never gets in. The operator
//! provisions the stream over TLS too, with the same settings in `admin/admin.toml`.

use fsc_e2e::{Cluster, ClusterOptions, eventually, party_name};
use fsc_tools::ca::Authority;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// Writes a CA, the broker's certificate for 127.0.0.1 and a client certificate per party into
/// `dir`, and one for the operator who provisions the stream; returns the broker's `tls` block,
/// the operator's TLS settings (admin.toml) and every node's environment.
fn certificates(dir: &Path, parties: usize) -> (String, String, Vec<(String, String)>) {
    let ca = Authority::new("broker CA").unwrap();
    ca.write(&dir.join("ca.crt"), &dir.join("ca.key")).unwrap();
    ca.issue_server("127.0.0.1", &dir.join("broker.crt"), &dir.join("broker.key"))
        .unwrap();
    for name in (0..parties).map(party_name).chain(["admin".to_string()]) {
        ca.issue_client(&name, &dir.join(format!("{name}.pem"))).unwrap();
    }
    let tls = format!(
        "tls {{\n    cert_file: \"{}\"\n    key_file: \"{}\"\n    ca_file: \"{}\"\n    verify: true\n}}",
        dir.join("broker.crt").display(),
        dir.join("broker.key").display(),
        dir.join("ca.crt").display()
    );
    // Every node trusts the CA and presents its own certificate (one PEM file with its key).
    let identity = dir.join("{id}.pem").display().to_string();
    let env = vec![
        ("FSC_NATS_CA_FILE".to_string(), dir.join("ca.crt").display().to_string()),
        ("FSC_NATS_CLIENT_CERT".to_string(), identity.clone()),
        ("FSC_NATS_CLIENT_KEY".to_string(), identity),
    ];
    let admin = format!(
        "nats_ca_file = {:?}\nnats_client_cert = {:?}\nnats_client_key = {:?}",
        dir.join("ca.crt"),
        dir.join("admin.pem"),
        dir.join("admin.pem")
    );
    (tls, admin, env)
}

#[tokio::test]
async fn nodes_with_client_certificates_compute_and_a_node_without_one_stays_out() {
    let certs = tempfile::tempdir().unwrap();
    let (tls, admin, env) = certificates(certs.path(), 2);
    let mut cluster = Cluster::start_with(ClusterOptions {
        parties: 2,
        env,
        broker_config: Some(tls),
        admin_config: Some(admin),
        ..Default::default()
    })
    .await;
    let id = cluster.submit_sum(&[json!(19), json!(23)]).await;
    for view in cluster.finals(id, Duration::from_secs(60)).await {
        assert_eq!(
            view["output"]["result"]["sum"],
            json!(42.0),
            "{view}\n{}",
            cluster.logs()
        );
    }

    let log = cluster.path().join("nats-server.log");
    let refusals = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("didn't provide a certificate")
            .count()
    };
    let before = refusals();
    let bob = cluster.node_mut("bob");
    bob.unset_env("FSC_NATS_CLIENT_CERT");
    bob.unset_env("FSC_NATS_CLIENT_KEY");
    bob.respawn();
    eventually(
        Duration::from_secs(30),
        "the broker refuses bob's handshake",
        || async { refusals() > before },
    )
    .await;
    let bob = cluster.node("bob").client();
    eventually(Duration::from_secs(30), "bob serves his API", || async {
        bob.node().await.is_ok()
    })
    .await;
    assert!(!bob.ready().await, "bob is ready without a client certificate");
    assert_eq!(bob.node().await.unwrap()["broker_connected"], json!(false));
}
