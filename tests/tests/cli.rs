//! The `fsc` command line, run as a user would: the demo, submit/status, and batch.

use fsc_e2e::{Cluster, fsc_bin, output_text as text};
use serde_json::{Value, json};
use std::process::{Command, Output};
use uuid::Uuid;

async fn fsc(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || Command::new(fsc_bin()).args(&args).output().expect("run fsc"))
        .await
        .unwrap()
}

/// `fsc demo` prints the tutorial's result as the original tutorial shows it, and exits 0.
#[tokio::test]
async fn the_demo_prints_the_tutorial_sum() {
    let output = fsc(vec!["demo".into()]).await;
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        r#"{"inputs": 3, "result": {"samples": 3, "sum": 85.0}}"#
    );
}

/// `fsc submit` at every party, then `fsc status --wait`.
#[tokio::test]
async fn submit_and_status() {
    let cluster = Cluster::start(3).await;
    let id = Uuid::new_v4().to_string();
    let mut submissions = Vec::new();
    for (node, input) in cluster.nodes.iter().zip(["19", "5", "61"]) {
        let args = [
            "submit",
            "--node",
            &node.url,
            "--parties",
            "alice,bob,carol",
            "--input",
            input,
            "--id",
            &id,
        ];
        submissions.push(tokio::spawn(fsc(args.map(String::from).to_vec())));
    }
    for submission in submissions {
        let output = submission.await.unwrap();
        assert!(output.status.success(), "{}", text(&output));
        let accepted: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(accepted["id"], json!(id));
    }
    let output = fsc(["status", "--node", &cluster.nodes[1].url, &id, "--wait", "30"]
        .map(String::from)
        .to_vec())
    .await;
    assert!(output.status.success(), "{}", text(&output));
    let view: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        view["output"],
        json!({"inputs": 3, "result": {"samples": 3, "sum": 85.0}})
    );

    let refused = fsc([
        "submit",
        "--node",
        &cluster.nodes[0].url,
        "--parties",
        "alice,bob,carol",
        "--input",
        "\"x\"",
    ]
    .map(String::from)
    .to_vec())
    .await;
    assert!(!refused.status.success());
    assert!(text(&refused).contains("invalid input"), "{}", text(&refused));
}

/// `fsc batch FILE` at every party: all computations submitted, followed to the end, counted.
#[tokio::test]
async fn batch_files_are_submitted_and_followed() {
    let cluster = Cluster::start(3).await;
    let ids: Vec<Uuid> = (0..30).map(|_| Uuid::new_v4()).collect();
    let mut runs = Vec::new();
    for (i, node) in cluster.nodes.iter().enumerate() {
        let lines: Vec<String> = ids
            .iter()
            .map(|id| cluster.sum_request(*id, json!(i)).to_string())
            .collect();
        let file = cluster.path().join(format!("batch-{i}.jsonl"));
        std::fs::write(&file, lines.join("\n")).unwrap();
        let args = vec![
            "batch".to_string(),
            "--node".into(),
            node.url.clone(),
            file.to_str().unwrap().into(),
        ];
        runs.push(tokio::spawn(fsc(args)));
    }
    for run in runs {
        let output = run.await.unwrap();
        assert!(output.status.success(), "{}", text(&output));
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("30 succeeded, 0 failed, 0 rejected"),
            "{}",
            text(&output)
        );
    }
}
