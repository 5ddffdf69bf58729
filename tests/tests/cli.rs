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

/// `fsc batch FILE` at every party: all computations submitted, followed to the end, one JSON
/// line each on stdout, the tally on stderr, exit code 0.
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
        let lines = json_lines(&output);
        assert_eq!(lines.len(), 30, "{}", text(&output));
        for (i, (line, id)) in lines.iter().zip(&ids).enumerate() {
            assert_eq!(line["item"], json!(i + 1));
            assert_eq!(line["id"], json!(id));
            assert_eq!(line["status"], "succeeded", "{line}");
            assert_eq!(line["output"]["result"]["sum"], json!(3.0));
        }
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("30 succeeded, 0 failed, 0 rejected"),
            "{}",
            text(&output)
        );
    }
}

/// stdout of a command that prints JSON lines, each parsed.
fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?} on stdout\n{}", text(output))))
        .collect()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| a.to_string()).collect()
}

/// `fsc submit` of computation `id` at `node`, with input 1.
fn submit_one(node: &str, id: &str) -> Vec<String> {
    args(&[
        "submit",
        "--node",
        node,
        "--parties",
        "alice,bob,carol",
        "--input",
        "1",
        "--id",
        id,
    ])
}

/// What scripts rely on: `fsc batch` reports every item and exits 3 if any failed or was
/// rejected, and accepts a one-line file; `fsc status` and `submit --wait` exit 3 for a failed
/// computation and 4 if the wait ran out; `fsc list` lists; `fsc healthcheck` tells readiness.
#[tokio::test]
async fn exit_codes_and_outputs_tell_failures() {
    let cluster = Cluster::start(3).await;
    let alice = cluster.nodes[0].url.clone();
    let (ok, failed) = (Uuid::new_v4(), Uuid::new_v4());
    // `failed` fails at bob, who tells alice before her batch submits it.
    assert_eq!(cluster.submit_at(1, failed, json!("x")).await, 400);
    for node in [1, 2] {
        assert_eq!(cluster.submit_at(node, ok, json!(node)).await, 202);
    }
    let mut unknown_party = cluster.sum_request(Uuid::new_v4(), json!(1));
    unknown_party["parties"] = json!(["alice", "zed"]);
    let items = [
        cluster.sum_request(ok, json!(40)),
        cluster.sum_request(Uuid::new_v4(), json!("not a number")),
        cluster.sum_request(failed, json!(1)),
        unknown_party,
    ];
    let file = cluster.path().join("mixed.jsonl");
    let lines: Vec<String> = items.iter().map(Value::to_string).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let output = fsc(args(&["batch", "--node", &alice, file.to_str().unwrap()])).await;
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 4, "{}", text(&output));
    assert_eq!(lines[0]["status"], "succeeded", "{}", lines[0]);
    assert_eq!(lines[0]["output"]["result"]["sum"], json!(43.0));
    assert_eq!(lines[1]["status"], "rejected");
    assert_eq!(lines[1]["id"], items[1]["id"]);
    assert_eq!(lines[1]["problem"]["code"], "invalid_input", "{}", lines[1]);
    assert_eq!(lines[2]["status"], "failed");
    assert_eq!(lines[2]["id"], json!(failed));
    assert_eq!(lines[2]["error"]["party"], "bob", "{}", lines[2]);
    assert_eq!(lines[3]["status"], "rejected");
    assert_eq!(lines[3]["problem"]["code"], "unknown_party", "{}", lines[3]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("1 succeeded, 1 failed, 2 rejected"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "no bar off a terminal: {stderr}");

    // A file of one line is one computation.
    let one = Uuid::new_v4();
    for node in [1, 2] {
        assert_eq!(cluster.submit_at(node, one, json!(1)).await, 202);
    }
    let file = cluster.path().join("one.json");
    std::fs::write(&file, cluster.sum_request(one, json!(1)).to_string()).unwrap();
    let output = fsc(args(&["batch", "--node", &alice, file.to_str().unwrap()])).await;
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(json_lines(&output)[0]["status"], "succeeded");

    // status: 3 for a failed computation, 0 for a succeeded one, 4 if --wait runs out.
    let id = failed.to_string();
    let output = fsc(args(&["status", "--node", &alice, &id])).await;
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let view: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(view["status"], "failed");
    let output = fsc(args(&["status", "--node", &alice, &ok.to_string()])).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let pending = Uuid::new_v4().to_string();
    let output = fsc(submit_one(&alice, &pending)).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let output = fsc(args(&["status", "--node", &alice, &pending])).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "pending, without --wait: {}",
        text(&output)
    );
    let output = fsc(args(&["status", "--node", &alice, &pending, "--wait", "0.2"])).await;
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));

    // submit --wait: 3 when the computation fails (here: carol's input is refused first).
    let doomed = Uuid::new_v4();
    assert_eq!(cluster.submit_at(2, doomed, json!("x")).await, 400);
    let doomed = doomed.to_string();
    let mut submit = submit_one(&alice, &doomed);
    submit.extend(args(&["--wait", "30"]));
    let output = fsc(submit).await;
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let view: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(view["error"]["party"], "carol", "{view}");

    // list: one JSON object per line, newest first, filtered by status.
    let output = fsc(args(&["list", "--node", &alice, "--status", "failed"])).await;
    assert!(output.status.success(), "{}", text(&output));
    let listed: Vec<Value> = json_lines(&output).iter().map(|c| c["id"].clone()).collect();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert_eq!(listed[0], json!(doomed), "newest first");
    for id in [json!(failed), items[1]["id"].clone()] {
        assert!(listed.contains(&id), "{id} in {listed:?}");
    }
    let output = fsc(args(&["list", "--node", &alice, "--limit", "2"])).await;
    assert_eq!(json_lines(&output).len(), 2, "{}", text(&output));

    // healthcheck: 0 for a ready node, 1 for none.
    let output = fsc(args(&["healthcheck", "--node", &alice])).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", nobody.local_addr().unwrap());
    drop(nobody);
    let output = fsc(args(&["healthcheck", "--node", &url])).await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
}

/// The CLI and the API tell the same story on every try (issue 26): an unknown microprotocol is
/// rejected every time, not `failed` the second time, and leaves no `microprotocol="unknown"`
/// series in the metrics; `fsc list` says when it stops before the end, and `--all` follows every
/// page; an argument that is not JSON is a usage error (2); the help names what a user needs.
#[tokio::test]
async fn every_try_gets_the_same_answer_and_lists_go_to_the_end() {
    let cluster = Cluster::start(3).await;
    let alice = cluster.nodes[0].url.clone();
    let client = cluster.nodes[0].client();

    let mut nope = cluster.sum_request(Uuid::new_v4(), json!(1));
    nope["microprotocol"] = json!("Nope");
    let file = cluster.path().join("nope.jsonl");
    std::fs::write(&file, nope.to_string()).unwrap();
    for attempt in 1..=2 {
        let output = fsc(args(&["batch", "--node", &alice, file.to_str().unwrap()])).await;
        assert_eq!(output.status.code(), Some(3), "{}", text(&output));
        let line = &json_lines(&output)[0];
        assert_eq!(line["status"], "rejected", "try {attempt}: {line}");
        assert_eq!(
            line["problem"]["code"], "unknown_microprotocol",
            "try {attempt}: {line}"
        );
        let answer = client.submit(&nope).await.unwrap();
        assert_eq!(answer.status, 501, "try {attempt}: {}", answer.body);
    }
    let metrics = client.metrics().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "fsc_computations_failed_total{reason=\"unknown_microprotocol\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("microprotocol=\"unknown\"") && !metrics.contains("Nope"),
        "{metrics}"
    );

    // 120 computations wait at alice (nobody else joins them): more than a page of 100.
    let items: Vec<Value> = (0..120)
        .map(|_| cluster.sum_request(Uuid::new_v4(), json!(1)))
        .collect();
    for result in client.submit_all(&items).await.unwrap() {
        assert_eq!(result["status"], "pending", "{result}");
    }
    let output = fsc(args(&["list", "--node", &alice])).await;
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(json_lines(&output).len(), 100);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("there are more: --all"), "{stderr}");
    let output = fsc(args(&["list", "--node", &alice, "--all"])).await;
    assert!(output.status.success(), "{}", text(&output));
    let listed = json_lines(&output);
    assert_eq!(listed.len(), 121, "the 120 and the refused one");
    assert_eq!(listed[120]["microprotocol"], "Nope", "oldest last");
    assert!(output.stderr.is_empty(), "{}", text(&output));
    let output = fsc(args(&[
        "list", "--node", &alice, "--status", "pending", "--limit", "120",
    ]))
    .await;
    assert_eq!(json_lines(&output).len(), 120);
    assert!(
        output.stderr.is_empty(),
        "exactly all: nothing more to say: {}",
        text(&output)
    );

    // Arguments that are not JSON: usage errors, as clap's own.
    for (flag, value) in [("--input", "abc"), ("--parameters", "{\"digits_after\"")] {
        let mut submit = args(&["submit", "--node", &alice, "--parties", "alice,bob"]);
        if flag == "--parameters" {
            submit.extend(args(&["--input", "1"]));
        }
        submit.extend(args(&[flag, value]));
        let output = fsc(submit).await;
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(&format!("{flag} is not JSON")),
            "{}",
            text(&output)
        );
    }

    let help = |command: &'static str| async move { text(&fsc(args(&[command, "--help"])).await) };
    let submit = help("submit").await;
    for named in ["--microprotocol <MICROPROTOCOL>", "--parameters <PARAMETERS>"] {
        assert!(submit.contains(named), "{submit}");
    }
    let batch = help("batch").await;
    for status in ["succeeded", "failed", "rejected", "pending or running"] {
        assert!(batch.contains(status), "{batch}");
    }
    assert!(help("list").await.contains("--all"));
}
