//! The HTTP API over TLS: three nodes serving https with certificates of a CA that
//! `fsc federation init --tls` made for the test, used by the v1 client, the CLI and the
//! unmodified Python client; and what happens to clients that do not trust that CA or speak
//! plain HTTP to it.

use fsc_client::Client;
use fsc_e2e::{Cluster, ClusterOptions, clients_env, eventually, fsc_bin, output_text as text};
use fsc_tools::ca::Authority;
use serde_json::json;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;
use uuid::Uuid;

const FINAL: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("run a command"))
        .await
        .unwrap()
}

#[tokio::test]
async fn three_nodes_serve_https_to_the_client_the_cli_the_demo_and_the_python_client() {
    let cluster = Cluster::start_with(ClusterOptions {
        parties: 3,
        tls: true,
        ..Default::default()
    })
    .await;
    let ca = cluster.path().join("ca.crt");
    for node in &cluster.nodes {
        assert!(node.url.starts_with("https://127.0.0.1:"), "{}", node.url);
        let log = node.log();
        assert!(
            log.lines().any(|l| l.contains("serving") && l.contains("\"https\"")),
            "{log}"
        );
    }

    // The v1 client, trusting the CA.
    let id = cluster.submit_sum(&[json!(19), json!(5), json!(61)]).await;
    for view in cluster.finals(id, FINAL).await {
        assert_eq!(view["output"]["result"]["sum"], json!(85.0), "{view}");
    }

    // The CLI: `--ca-file` for two parties, `FSC_CA_FILE` for the third, which waits for the end.
    let id = Uuid::new_v4();
    let mut outputs = Vec::new();
    for (node, input) in cluster.nodes.iter().zip([1, 2, 3]) {
        let mut command = Command::new(fsc_bin());
        command
            .args(["submit", "--node", &node.url, "--parties", "alice,bob,carol"])
            .args(["--id", &id.to_string(), "--input", &input.to_string()]);
        if node.id == "carol" {
            command.args(["--wait", "30"]).env("FSC_CA_FILE", &ca);
        } else {
            command.arg("--ca-file").arg(&ca);
        }
        outputs.push(run(command).await);
    }
    for output in &outputs {
        assert!(output.status.success(), "{}", text(output));
    }
    assert!(text(&outputs[2]).contains("\"sum\": 6.0"), "{}", text(&outputs[2]));

    // The demo client, against the running https nodes.
    let urls: Vec<String> = cluster.nodes.iter().map(|n| n.url.clone()).collect();
    let mut demo = Command::new(fsc_bin());
    demo.args(["demo", "--against", &urls.join(","), "--ca-file"]).arg(&ca);
    let demo = run(demo).await;
    assert!(demo.status.success(), "{}", text(&demo));
    assert!(text(&demo).contains(r#""sum": 85.0"#), "{}", text(&demo));

    // The unmodified Python client (requests), told of the CA by REQUESTS_CA_BUNDLE.
    let python = repo().join(".tools/venv/bin/python");
    assert!(python.is_file(), "{} is missing: run scripts/setup", python.display());
    let runs: Vec<_> = (0..3)
        .map(|party| {
            let mut command = Command::new(&python);
            command
                .arg(repo().join("docs/secure_sum.py"))
                .arg(party.to_string())
                .env("FSC_NODES", urls.join(","))
                .env("REQUESTS_CA_BUNDLE", &ca);
            tokio::spawn(run(command))
        })
        .collect();
    for run in runs {
        let output = run.await.unwrap();
        assert!(output.status.success(), "{}", text(&output));
        assert!(text(&output).contains("'sum': 85.0"), "{}", text(&output));
    }
}

/// A client that does not trust the federation's CA gets no answer, not even to /healthz; nor
/// does one speaking plain HTTP to an https node.
#[tokio::test]
async fn clients_without_the_ca_or_without_tls_are_refused() {
    let cluster = Cluster::start_with(ClusterOptions {
        parties: 2,
        tls: true,
        ..Default::default()
    })
    .await;
    let url = &cluster.nodes[0].url;
    let status = Command::new(fsc_bin())
        .args(["status", "--node", url, &Uuid::new_v4().to_string()])
        .env_remove("FSC_CA_FILE")
        .output()
        .unwrap();
    assert!(!status.status.success());
    assert!(
        text(&status).to_lowercase().contains("certificate"),
        "{}",
        text(&status)
    );

    let error = Client::new(url, None).node().await.unwrap_err();
    assert!(error.to_string().contains(url.as_str()), "{error}");
    let plain = url.replace("https://", "http://");
    let answer = reqwest::get(format!("{plain}/healthz")).await;
    assert!(answer.is_err(), "plain HTTP got an answer: {answer:?}");

    // A CA file that holds no certificate is an error of its own, said as such.
    let empty = cluster.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let error = Client::with_ca(url, None, Some(&empty)).err().unwrap();
    assert!(error.to_string().contains("no PEM certificate"), "{error}");
    // With the CA, the same node answers.
    assert!(cluster.nodes[0].client().node().await.is_ok());
}

/// With `tls_client_ca`, a node serves only clients presenting a certificate that CA signed
/// (the CLI's `--client-cert`), and still wants their token.
#[tokio::test]
async fn with_a_client_ca_only_clients_with_its_certificates_are_served() {
    let mut cluster = Cluster::start_with(ClusterOptions {
        parties: 2,
        tls: true,
        env: vec![clients_env(&[("ops", "token-ops", true)])],
        ..Default::default()
    })
    .await;
    let dir = cluster.path().to_path_buf();
    let (ca, clients_ca, identity, stranger) = (
        dir.join("ca.crt"),
        dir.join("clients-ca.crt"),
        dir.join("ops.pem"),
        dir.join("stranger.pem"),
    );
    let authority = Authority::new("clients of alice").unwrap();
    authority.write(&clients_ca, &dir.join("clients-ca.key")).unwrap();
    authority.issue_client("ops", &identity).unwrap();
    Authority::new("someone else")
        .unwrap()
        .issue_client("ops", &stranger)
        .unwrap();
    let alice = cluster.node_mut("alice");
    alice.set_env("FSC_TLS_CLIENT_CA", clients_ca.to_str().unwrap());
    alice.respawn();
    let url = cluster.nodes[0].url.clone();
    let with = |identity: Option<&PathBuf>, token: &str| {
        Client::with_tls(&url, Some(token.into()), Some(&ca), identity.map(PathBuf::as_path)).unwrap()
    };
    let ops = with(Some(&identity), "token-ops");
    eventually(FINAL, "alice serves again, to certified clients", || async {
        ops.node().await.is_ok()
    })
    .await;
    assert!(
        with(Some(&identity), "wrong")
            .node()
            .await
            .unwrap_err()
            .to_string()
            .contains("answered 401")
    );
    for refused in [with(None, "token-ops"), with(Some(&stranger), "token-ops")] {
        let error = refused.node().await.unwrap_err().to_string();
        assert!(!error.contains("answered"), "{error}");
    }

    let cli = |identity: Option<&PathBuf>| {
        let mut command = Command::new(fsc_bin());
        command
            .args(["status", "--node", &url, "--token", "token-ops", "--ca-file"])
            .arg(&ca)
            .arg(Uuid::new_v4().to_string());
        if let Some(identity) = identity {
            command.arg("--client-cert").arg(identity);
        }
        command.output().unwrap()
    };
    // The CLI says "answered <status>" only for an HTTP response; a bare "404" could also be
    // part of the random id or port in a transport error's URL.
    let certified = cli(Some(&identity));
    assert!(text(&certified).contains("answered 404"), "{}", text(&certified));
    let uncertified = cli(None);
    let refusal = text(&uncertified);
    assert!(
        !uncertified.status.success() && !refusal.contains("answered"),
        "{refusal}"
    );
}
