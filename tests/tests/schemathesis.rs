//! The API against its own OpenAPI document, fuzzed by schemathesis (installed by scripts/setup)
//! on a running node: every operation, the batch endpoint and the federatedsecure routes
//! included, with an API client's token.

use fsc_e2e::{Cluster, ClusterOptions};
use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Two minutes of generated requests (examples, coverage, fuzzing and stateful phases): no 5xx,
/// no timeout, every response as /openapi.json says.
#[tokio::test]
async fn the_api_answers_as_its_openapi_document_says() {
    let token = "schemathesis-token";
    let digest = fsc_node::keys::api_token_sha256(token);
    let cluster = Cluster::start_with(ClusterOptions {
        parties: 2,
        env: vec![(
            "FSC_CLIENTS".into(),
            format!(r#"[{{name = "fuzzer", token_sha256 = "{digest}"}}]"#),
        )],
        ..Default::default()
    })
    .await;
    let schemathesis = repo().join(".tools/venv/bin/schemathesis");
    assert!(
        schemathesis.is_file(),
        "{} is missing: run scripts/setup",
        schemathesis.display()
    );
    let reports = cluster.path().join("schemathesis");
    let mut command = Command::new(schemathesis);
    command
        .arg("--config-file")
        .arg(repo().join("tests/schemathesis.toml"))
        .arg("run")
        .arg(format!("{}/openapi.json", cluster.nodes[0].url))
        .args(["--max-time", "120", "--header"])
        .arg(format!("Authorization: Bearer {token}"))
        .args(["--report", "junit", "--report-dir"])
        .arg(&reports)
        .env("NO_COLOR", "1")
        .current_dir(cluster.path());
    let output = tokio::task::spawn_blocking(move || command.output().expect("run schemathesis"))
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{printed}\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        cluster.logs()
    );
    assert!(printed.contains(" passed"), "{printed}");
}
