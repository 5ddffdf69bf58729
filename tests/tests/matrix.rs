//! Matrix products and vertical regression end to end: real nodes, a real broker, a helper from
//! the federation that has no client of its own; through /v1 and through the unmodified Python
//! client (conformance.py over every public vector of both protocols).

use fsc_e2e::Cluster;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use uuid::Uuid;

const FINAL: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn request(id: Uuid, microprotocol: &str, parties: &[&str], parameters: Value, input: Value) -> Value {
    json!({"id": id, "microprotocol": microprotocol, "parties": parties, "parameters": parameters, "input": input})
}

/// Submits `inputs[i]` at node i under one new id; returns the id and each node's answer.
async fn submit(
    cluster: &Cluster,
    microprotocol: &str,
    parties: &[&str],
    parameters: Value,
    inputs: &[Value],
) -> (Uuid, Vec<(u16, Value)>) {
    let id = Uuid::new_v4();
    let mut answers = Vec::new();
    for (party, input) in parties.iter().zip(inputs) {
        let body = request(id, microprotocol, parties, parameters.clone(), input.clone());
        let answer = cluster.node(party).client().submit(&body).await.expect("submit");
        answers.push((answer.status.as_u16(), answer.body));
    }
    (id, answers)
}

/// Two parties and carol, the federation's third member, as their helper: both learn the
/// product; carol ran the computation without a client, learned the shapes, and nothing else.
#[tokio::test]
async fn two_parties_multiply_with_the_federation_helper() {
    let cluster = Cluster::start(3).await;
    let x = json!([[[1, 2, 3], [4, 5, 6]]]);
    let y = json!([[[0.5, -1], [0.25, 2], [-3, 0.125]]]);
    let (id, answers) = submit(
        &cluster,
        "SecureMatrixMultiplication",
        &["alice", "bob"],
        json!({}),
        &[x, y],
    )
    .await;
    assert!(answers.iter().all(|(status, _)| *status == 202), "{answers:?}");
    let want = json!({"inputs": 2, "result": {"product": [[-8.0, 3.375], [-14.75, 6.75]]}});
    for party in ["alice", "bob"] {
        let view = cluster.node(party).client().wait_final(id, FINAL).await.unwrap();
        assert_eq!(view["status"], "succeeded", "{view}\n{}", cluster.logs());
        assert_eq!(view["output"], want);
        assert_eq!(view["parameters"], json!({"digits_after": 12, "helper": "carol"}));
    }
    let helper = cluster.node("carol").client().wait_final(id, FINAL).await.unwrap();
    assert_eq!(helper["status"], "succeeded", "{helper}\n{}", cluster.logs());
    assert_eq!(
        helper["output"],
        json!({"inputs": 2, "result": {"helper": {"shapes": [[2, 3], [3, 2]]}}})
    );
    assert_eq!(helper["parties"], json!(["alice", "bob"]));
    // The parties sign receipts of the product; the helper, which holds only the shapes, none.
    let alice = cluster.node("alice").client();
    fsc_e2e::eventually(FINAL, "alice's receipt complete", || async {
        alice.receipt(id).await.is_ok_and(|r| r["complete"] == true)
    })
    .await;
    let receipt = alice.receipt(id).await.unwrap();
    assert_eq!(receipt["signatures"].as_array().unwrap().len(), 2, "{receipt}");
    let at_helper = cluster
        .node("carol")
        .client()
        .receipt(id)
        .await
        .expect_err("a helper signs nothing");
    assert!(at_helper.to_string().contains("404"), "{at_helper}");
}

/// Bad input is a 400 naming the problem at the party that submitted it, and every other party
/// (the helper included) fails with that reason; incompatible shapes fail everybody.
#[tokio::test]
async fn bad_matrices_fail_every_party_with_the_reason() {
    let cluster = Cluster::start(3).await;
    let (id, answers) = submit(
        &cluster,
        "SecureMatrixMultiplication",
        &["alice", "bob"],
        json!({}),
        &[json!([[1, 2], [3]]), json!([[1], [2]])],
    )
    .await;
    assert_eq!(answers[0].0, 400, "{answers:?}");
    assert!(
        answers[0]
            .1
            .to_string()
            .contains("ragged rows: row 1 has 1 entries, row 0 has 2")
    );
    // The helper too, whether bob's invitation or alice's abort reaches it first; they are told
    // the reason's code and alice, not the detail.
    for party in ["bob", "carol"] {
        let view = cluster.final_at(party, id, FINAL).await;
        assert_eq!(view["status"], "failed", "{party}: {view}");
        assert_eq!(view["error"]["code"], "invalid_input", "{party}: {view}");
        assert_eq!(view["error"]["party"], "alice", "{party}: {view}");
    }

    let (id, answers) = submit(
        &cluster,
        "SecureMatrixMultiplication",
        &["alice", "bob"],
        json!({}),
        &[json!([[1, 2, 3], [4, 5, 6]]), json!([[1, 2], [3, 4]])],
    )
    .await;
    assert!(answers.iter().all(|(status, _)| *status == 202), "{answers:?}");
    // Every party can find it from the shapes; one that hears another's abort first is told the
    // code only, so the detail is at one party at least.
    let mut details = 0;
    for party in ["alice", "bob", "carol"] {
        let view = cluster.final_at(party, id, FINAL).await;
        assert_eq!(view["status"], "failed", "{party}: {view}");
        assert_eq!(view["error"]["code"], "no_result", "{party}: {view}");
        let message = view["error"]["message"].as_str().unwrap();
        details +=
            usize::from(message.contains("matrix shapes not compatible: party 0's matrix is 2×3, party 1's is 2×2"));
    }
    assert!(details > 0, "no party kept the detail");
}

/// A federation of two has no helper: both parties are told so at once, unless they opt in to the
/// original's method and what it reveals.
#[tokio::test]
async fn without_a_helper_both_parties_get_a_clear_error_or_opt_in() {
    let cluster = Cluster::start(2).await;
    let (_, answers) = submit(
        &cluster,
        "StatisticsRegressionOLSVertical",
        &["alice", "bob"],
        json!({}),
        &[json!([[[1, 0], [0, 1], [1, 1]]]), json!([[1, 2, 3]])],
    )
    .await;
    for (status, body) in answers {
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["code"], "no_helper", "{body}");
        assert!(body.to_string().contains("needs a helper"), "{body}");
    }
    let (id, answers) = submit(
        &cluster,
        "SecureMatrixMultiplication",
        &["alice", "bob"],
        json!({"reveal_inputs_without_helper": true}),
        &[json!([[[1, 2, 3]]]), json!([[[4], [5], [6]]])],
    )
    .await;
    assert!(answers.iter().all(|(status, _)| *status == 202), "{answers:?}");
    for view in cluster.finals(id, FINAL).await {
        assert_eq!(view["status"], "succeeded", "{view}\n{}", cluster.logs());
        let product = view["output"]["result"]["product"][0][0].as_f64().unwrap();
        assert!((product - 32.0).abs() < 1e-9, "{view}");
    }
}

/// A product of a 3×2 X and a 2×2 Y hands each owner the other's matrix: through /v1 both refuse
/// (`revealing_shapes`) unless the parties allow it; the original's API keeps its semantics.
#[tokio::test]
async fn shapes_that_reveal_an_input_are_refused_unless_allowed() {
    let cluster = Cluster::start(3).await;
    let inputs = [json!([[1, 2], [3, 4], [5, 6]]), json!([[1, 0], [0, 1]])];
    let (id, answers) = submit(
        &cluster,
        "SecureMatrixMultiplication",
        &["alice", "bob"],
        json!({}),
        &inputs,
    )
    .await;
    assert!(answers.iter().all(|(status, _)| *status == 202), "{answers:?}");
    let bob = cluster.node("bob").client().wait_final(id, FINAL).await.unwrap();
    assert_eq!(bob["status"], "failed", "{bob}");
    assert_eq!(bob["error"]["code"], "revealing_shapes", "{bob}");
    let allowed = json!({"allow_revealing_shapes": true});
    let (id, _) = submit(
        &cluster,
        "SecureMatrixMultiplication",
        &["alice", "bob"],
        allowed,
        &inputs,
    )
    .await;
    let bob = cluster.node("bob").client().wait_final(id, FINAL).await.unwrap();
    assert_eq!(
        bob["output"]["result"]["product"],
        json!([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]),
        "{bob}"
    );
}

/// The regression through /v1, with three parties: carol submits too and is the helper.
#[tokio::test]
async fn the_regression_reveals_beta_to_three_parties() {
    let cluster = Cluster::start(3).await;
    let x = json!([[[1.0, 2.0, 0.0], [2.0, 1.0, 1.0], [0.0, 4.0, 3.0]]]);
    let y = json!([[17.0, 23.0, 45.0]]);
    let (id, answers) = submit(
        &cluster,
        "StatisticsRegressionOLSVertical",
        &["alice", "bob", "carol"],
        // n = p: β hands y to alice, which bob accepts here.
        json!({"allow_revealing_shapes": true}),
        &[x, y, Value::Null],
    )
    .await;
    assert!(answers.iter().all(|(status, _)| *status == 202), "{answers:?}");
    for view in cluster.finals(id, FINAL).await {
        assert_eq!(view["status"], "succeeded", "{view}\n{}", cluster.logs());
        let beta: Vec<Vec<f64>> = serde_json::from_value(view["output"]["result"]["mle"].clone()).unwrap();
        for (b, want) in beta.iter().flatten().zip([5.0, 6.0, 7.0]) {
            assert!((b - want).abs() < 1e-12, "{beta:?}");
        }
    }
}

/// Every public vector of both protocols, replayed by conformance.py through the unmodified
/// Python client; the two-party ones find carol as their helper.
#[tokio::test]
async fn the_reference_vectors_pass_through_the_python_client() {
    let cluster = Cluster::start(3).await;
    let python = repo().join(".tools/venv/bin/python");
    assert!(python.is_file(), "{} is missing: run scripts/setup", python.display());
    for (only, want) in [
        ("secure_matrix_multiplication", "6 passed, 0 failed, 0 skipped"),
        ("statistics_regression", "1 passed, 0 failed, 0 skipped"),
    ] {
        let mut command = Command::new(&python);
        command
            .arg(repo().join("tests/python/conformance.py"))
            .args(["--vectors", repo().join("vectors").to_str().unwrap()])
            .args(["--timeout", "30", "--only", only])
            .args(cluster.nodes.iter().map(|n| n.url.clone()));
        let output = tokio::task::spawn_blocking(move || command.output().expect("run python"))
            .await
            .unwrap();
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{report}\n{}\n{}",
            String::from_utf8_lossy(&output.stderr),
            cluster.logs()
        );
        assert_eq!(report.lines().last().unwrap(), want, "{report}");
    }
}

/// The helper's node is down while the parties start: their invitations and seeds wait in the
/// broker, and the product completes once it is back.
#[tokio::test]
async fn a_helper_that_was_down_joins_when_it_is_back() {
    let mut cluster = Cluster::start(3).await;
    cluster.node_mut("carol").kill();
    let (id, answers) = submit(
        &cluster,
        "SecureMatrixMultiplication",
        &["alice", "bob"],
        json!({"allow_revealing_shapes": true}),
        &[json!([[[2, 0], [0, 2]]]), json!([[[1, 2], [3, 4]]])],
    )
    .await;
    assert!(answers.iter().all(|(status, _)| *status == 202), "{answers:?}");
    let alice = cluster.node("alice").client();
    fsc_e2e::eventually(FINAL, "alice has bob's masked matrix", || async {
        alice.get(id, Duration::ZERO).await.unwrap()["status"] == "running"
    })
    .await;
    cluster.node_mut("carol").restart().await;
    for party in ["alice", "bob", "carol"] {
        let view = cluster.node(party).client().wait_final(id, FINAL).await.unwrap();
        assert_eq!(view["status"], "succeeded", "{party}: {view}\n{}", cluster.logs());
    }
    let view = alice.get(id, Duration::ZERO).await.unwrap();
    assert_eq!(view["output"]["result"]["product"], json!([[2.0, 4.0], [6.0, 8.0]]));
}
