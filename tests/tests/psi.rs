//! The PSI microprotocols (SetIntersection, SetIntersectionSize, StatisticsContingencyVertical)
//! on real nodes: their reference vectors through the unmodified Python client (two-party
//! SetIntersection by OT PSI), the `/v1` API with non-string items and bad input, the OT PSI
//! beside the DH ring, a large PSI that does not hold up other computations, an OT PSI's items
//! stored once, apart from its state, across a crash (and their loss failing it at both
//! parties), and large messages that wait for their
//! computation across a crash.

use fsc_e2e::{Cluster, ClusterOptions, psi_sets};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs conformance.py on the vectors whose names contain `only`; returns its report.
async fn conformance(cluster: &Cluster, only: &str) -> String {
    let python = repo().join(".tools/venv/bin/python");
    assert!(python.is_file(), "{} is missing: run scripts/setup", python.display());
    let mut command = Command::new(python);
    command
        .arg(repo().join("tests/python/conformance.py"))
        .args(["--vectors", repo().join("vectors").to_str().unwrap()])
        .args(["--timeout", "30", "--only", only])
        .args(cluster.nodes.iter().map(|n| n.url.clone()));
    let output = tokio::task::spawn_blocking(move || command.output().expect("run conformance.py"))
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    report
}

/// The vectors are all of two parties, so their SetIntersections run the OT PSI (the default
/// there): each one stored at alice says so in its normalised parameters.
#[tokio::test]
async fn the_reference_vectors_pass_through_the_python_client() {
    let cluster = Cluster::start(2).await;
    let report = conformance(&cluster, "set_intersection").await;
    assert_eq!(
        report.lines().last().unwrap(),
        "7 passed, 0 failed, 0 skipped",
        "{report}"
    );
    let listed = cluster.nodes[0].client().list().await.unwrap();
    let intersections: Vec<&Value> = listed["computations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["microprotocol"] == "SetIntersection")
        .collect();
    assert!(!intersections.is_empty(), "{listed}");
    for computation in intersections {
        assert_eq!(computation["parameters"], json!({"psi": "ot"}), "{computation}");
    }
    let report = conformance(&cluster, "statistics_contingency_vertical").await;
    assert_eq!(
        report.lines().last().unwrap(),
        "1 passed, 0 failed, 0 skipped",
        "{report}"
    );
}

/// Submits one computation at every node (input i at node i) under a new id.
async fn submit(cluster: &Cluster, microprotocol: &str, inputs: &[Value]) -> (Uuid, Vec<(u16, Value)>) {
    let id = Uuid::new_v4();
    let mut answers = Vec::new();
    for (node, input) in cluster.nodes.iter().zip(inputs) {
        let request = json!({"id": id, "microprotocol": microprotocol, "parties": cluster.parties, "input": input});
        let answer = node.client().submit(&request).await.expect("submit");
        answers.push((answer.status.as_u16(), answer.body));
    }
    (id, answers)
}

#[tokio::test]
async fn three_parties_intersect_any_json_items_through_v1_and_bad_input_fails_everywhere() {
    let cluster = Cluster::start(3).await;
    let inputs = [
        json!([[1, "ü", {"b": 2, "a": [true]}, null, "x"]]),
        json!([["ü", 1, {"a": [true], "b": 2}, 1.0, "y"], [1, "ü", {"a": [true], "b": 2}]]),
        json!([[{"a": [true], "b": 2}, "ü", 1, "z"]]),
    ];
    let (id, answers) = submit(&cluster, "SetIntersection", &inputs).await;
    assert!(answers.iter().all(|(status, _)| *status == 202), "{answers:?}");
    for view in cluster.finals(id, Duration::from_secs(30)).await {
        assert_eq!(view["status"], "succeeded", "{view}");
        let mut members: Vec<String> = view["output"]["result"]["intersection"]
            .as_array()
            .unwrap()
            .iter()
            .map(Value::to_string)
            .collect();
        members.sort();
        assert_eq!(members, ["\"ü\"", "1", r#"{"a":[true],"b":2}"#]);
    }
    let (id, _) = submit(&cluster, "SetIntersectionSize", &inputs).await;
    for view in cluster.finals(id, Duration::from_secs(30)).await {
        assert_eq!(view["output"]["result"], json!({"size_intersection": 3}), "{view}");
    }

    let bad = [json!("not a list"), json!([["a"]]), json!([["a"]])];
    let (id, answers) = submit(&cluster, "SetIntersection", &bad).await;
    assert_eq!(answers[0].0, 400, "{answers:?}");
    assert!(answers[0].1.to_string().contains("list of lists"), "{answers:?}");
    let finals = cluster.finals(id, Duration::from_secs(30)).await;
    for view in &finals {
        assert_eq!(view["status"], "failed", "{view}");
        assert_eq!(view["error"]["code"], "invalid_input", "{view}");
    }
    // alice keeps the detail; the others are told the code and that alice caused it.
    assert!(
        finals[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("list of lists"),
        "{}",
        finals[0]
    );
    for view in &finals[1..] {
        assert_eq!(view["error"]["party"], "alice", "{view}");
    }
}

/// Two-party SetIntersection by OT PSI through `/v1`, of any JSON items: both parties get the
/// members, the same as the DH ring gives (in another order: the OT PSI sorts them); the OT PSI
/// is the default between two parties, and among three it is refused at submission.
#[tokio::test]
async fn two_parties_intersect_by_ot_psi_through_v1_and_three_cannot() {
    let cluster = Cluster::start(3).await;
    let pair = &cluster.parties[..2];
    let inputs = [
        json!([[1, "ü", {"b": 2, "a": [true]}, null, "x", [1, 2]]]),
        json!([["ü", 1, {"a": [true], "b": 2}, 1.5, "y", [2, 1]]]),
    ];
    let members = |view: &Value| {
        let mut members: Vec<String> = view["output"]["result"]["intersection"]
            .as_array()
            .unwrap_or_else(|| panic!("no members: {view}"))
            .iter()
            .map(Value::to_string)
            .collect();
        members.sort();
        members
    };
    for parameters in [json!({"psi": "ot"}), json!({}), json!({"psi": "dh"})] {
        let id = Uuid::new_v4();
        for (node, input) in cluster.nodes.iter().zip(&inputs) {
            let request = json!({
                "id": id, "microprotocol": "SetIntersection", "parties": pair, "parameters": parameters, "input": input,
            });
            let answer = node.client().submit(&request).await.unwrap();
            assert_eq!(answer.status.as_u16(), 202, "{}", answer.body);
        }
        let views = pair_finals(&cluster, id).await;
        for view in &views {
            assert_eq!(view["status"], "succeeded", "{view}");
            assert_eq!(view["output"]["result"]["size_intersection"], 3, "{view}");
            assert_eq!(members(view), ["\"ü\"", "1", r#"{"a":[true],"b":2}"#], "{view}");
        }
        assert_eq!(views[0]["output"], views[1]["output"]);
        let method = if parameters == json!({"psi": "dh"}) { "dh" } else { "ot" };
        assert_eq!(views[0]["parameters"], json!({"psi": method}), "{}", views[0]);
    }

    let three = json!([["a"]]);
    let id = Uuid::new_v4();
    for node in &cluster.nodes {
        let request = json!({
            "id": id, "microprotocol": "SetIntersection", "parties": cluster.parties,
            "parameters": {"psi": "ot"}, "input": three,
        });
        let answer = node.client().submit(&request).await.unwrap();
        assert_eq!(answer.status.as_u16(), 400, "{}", answer.body);
        assert!(answer.body.to_string().contains("two-party"), "{}", answer.body);
    }
}

/// The final views of a computation of the first two nodes.
async fn pair_finals(cluster: &Cluster, id: Uuid) -> Vec<Value> {
    let mut views = Vec::new();
    for node in &cluster.nodes[..2] {
        views.push(node.client().wait_final(id, Duration::from_secs(120)).await.unwrap());
    }
    views
}

/// A PSI's curve work runs off the runtime's loop: a SecureSum of all three nodes finishes while a
/// large SetIntersectionSize of two of them is still running. Then a node is killed while a PSI
/// step may be in flight; restarted, it redoes what it had not committed, and the PSI finishes.
#[tokio::test]
async fn a_large_psi_holds_up_nothing_and_survives_a_crash() {
    let mut cluster = Cluster::start(3).await;
    let pair = &cluster.parties[..2];
    let submit_psi = |id: Uuid, inputs: Vec<Value>| {
        let requests: Vec<Value> = inputs
            .into_iter()
            .map(|input| json!({"id": id, "microprotocol": "SetIntersectionSize", "parties": pair, "input": input}))
            .collect();
        requests
    };
    let psi = Uuid::new_v4();
    for (node, request) in cluster.nodes.iter().zip(submit_psi(psi, psi_sets(2, 1 << 15, 1000))) {
        assert_eq!(node.client().submit(&request).await.unwrap().status.as_u16(), 202);
    }
    let sum = cluster.submit_sum(&[json!(1), json!(2), json!(3)]).await;
    let started = Instant::now();
    for view in cluster.finals(sum, Duration::from_secs(30)).await {
        assert_eq!(view["output"]["result"]["sum"], json!(6.0), "{view}");
    }
    let alice = cluster.nodes[0].client().get(psi, Duration::ZERO).await.unwrap();
    assert!(
        !["succeeded", "failed"].contains(&alice["status"].as_str().unwrap()),
        "the PSI finished before a SecureSum submitted after it ({:?}): {alice}",
        started.elapsed()
    );
    for view in pair_finals(&cluster, psi).await {
        assert_eq!(view["output"]["result"], json!({"size_intersection": 1000}), "{view}");
    }

    let psi = Uuid::new_v4();
    for (node, request) in cluster.nodes.iter().zip(submit_psi(psi, psi_sets(2, 1 << 14, 77))) {
        assert_eq!(node.client().submit(&request).await.unwrap().status.as_u16(), 202);
    }
    let bob = cluster.nodes[1].client();
    fsc_e2e::eventually(Duration::from_secs(60), "bob receives alice's list", || async {
        bob.get(psi, Duration::ZERO).await.unwrap()["status"] != "pending"
    })
    .await;
    cluster.nodes[1].kill();
    cluster.nodes[1].restart().await;
    for view in pair_finals(&cluster, psi).await {
        assert_eq!(
            view["output"]["result"],
            json!({"size_intersection": 77}),
            "{view}\n{}",
            cluster.logs()
        );
    }
}

/// The store file of `party`'s node.
fn store_of(cluster: &Cluster, party: &str) -> PathBuf {
    fsc_node::config::NodeConfig::load(&cluster.path().join(party).join("node.toml"), |_| None)
        .expect("the party's node.toml")
        .store
}

/// `(parts of its bulk, its stored state)` of computation `id` in the store at `path`, read
/// while the node runs.
fn stored(path: &PathBuf, id: Uuid) -> (i64, Option<String>) {
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let parts = conn
        .query_row(
            "SELECT COUNT(*) FROM bulk_parts WHERE computation = ?",
            [id.to_string()],
            |row| row.get(0),
        )
        .unwrap();
    let state = conn
        .query_row(
            "SELECT machine FROM computations WHERE id = ?",
            [id.to_string()],
            |row| row.get(0),
        )
        .unwrap_or(None);
    (parts, state)
}

/// Submits party `party`'s part of OT SetIntersection `id` of `inputs`; returns the HTTP status.
async fn submit_ot(cluster: &Cluster, party: usize, id: Uuid, inputs: &[Value]) -> u16 {
    let request = json!({"id": id, "microprotocol": "SetIntersection", "parties": cluster.parties, "parameters": {"psi": "ot"}, "input": inputs[party]});
    let answer = cluster.nodes[party].client().submit(&request).await.unwrap();
    answer.status.as_u16()
}

/// Bob submits his part of OT SetIntersection `id` alone (alice waits), and his node starts it:
/// returns his store once it holds his items apart.
async fn bob_alone_with_his_items_stored(cluster: &Cluster, id: Uuid, inputs: &[Value]) -> PathBuf {
    let bob = store_of(cluster, "bob");
    assert_eq!(submit_ot(cluster, 1, id, inputs).await, 202);
    fsc_e2e::eventually(Duration::from_secs(30), "bob stores his items apart", || async {
        stored(&bob, id).0 > 0
    })
    .await;
    bob
}

/// An OT PSI's items are stored once, apart from its state (which every step writes again),
/// and a node that crashes after its start loads them back: bob submits alone, is killed once
/// his items are stored, restarted, and when alice submits, both find the members. The items
/// are deleted with the state when the computation ends.
#[tokio::test]
async fn an_ot_psis_items_are_stored_apart_once_and_survive_a_crash() {
    let mut cluster = Cluster::start(2).await;
    let id = Uuid::new_v4();
    let inputs = psi_sets(2, 3000, 1234);
    let bob = bob_alone_with_his_items_stored(&cluster, id, &inputs).await;
    let (_, state) = stored(&bob, id);
    let state = state.expect("bob's state");
    assert!(!state.contains("shared-"), "an item in bob's state: {state}");

    cluster.nodes[1].kill();
    cluster.nodes[1].restart().await;
    assert_eq!(submit_ot(&cluster, 0, id, &inputs).await, 202);
    for view in pair_finals(&cluster, id).await {
        assert_eq!(view["status"], "succeeded", "{view}\n{}", cluster.logs());
        assert_eq!(view["output"]["result"]["size_intersection"], json!(1234), "{view}");
        let members = view["output"]["result"]["intersection"].as_array().unwrap();
        assert!(
            members.iter().all(|m| m.as_str().unwrap().starts_with("shared-")),
            "{view}"
        );
    }
    for party in ["alice", "bob"] {
        assert_eq!(
            stored(&store_of(&cluster, party), id),
            (0, None),
            "{party} keeps nothing of it"
        );
    }
}

/// A state whose items are missing from the store (lost, or written by no version that stores
/// them apart) fails its computation at the restart, `internal`, rather than step on an empty
/// set, and the peer is told: alice, submitting afterwards, finds it failed by bob.
#[tokio::test]
async fn an_ot_psi_whose_stored_items_are_missing_fails_at_both_parties() {
    let mut cluster = Cluster::start(2).await;
    let id = Uuid::new_v4();
    let inputs = psi_sets(2, 100, 10);
    let bob = bob_alone_with_his_items_stored(&cluster, id, &inputs).await;
    cluster.nodes[1].kill();
    {
        let conn = rusqlite::Connection::open(&bob).unwrap();
        conn.execute("DELETE FROM bulk_parts WHERE computation = ?", [id.to_string()])
            .unwrap();
    }
    cluster.nodes[1].restart().await;
    let view = cluster.nodes[1]
        .client()
        .wait_final(id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        (&view["status"], &view["error"]["code"]),
        (&json!("failed"), &json!("internal")),
        "{view}"
    );
    // Alice has bob's abort: her submission finds the computation failed (200, not 202).
    assert_eq!(submit_ot(&cluster, 0, id, &inputs).await, 200);
    let view = cluster.nodes[0]
        .client()
        .wait_final(id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        (&view["error"]["code"], &view["error"]["party"]),
        (&json!("internal"), &json!("bob")),
        "{view}"
    );
}

/// Large messages that arrive before their computation is submitted wait in the chunks they came
/// in (no second copy is written), outside the sender's chunk quota, and across a crash: two
/// PSI lists of ~130 kB in 16 kB chunks wait at alice under a 200 kB chunk quota, alice is killed,
/// and once restarted and submitted, both PSIs finish right.
#[tokio::test]
async fn large_messages_wait_in_their_chunks_across_a_crash() {
    let mut cluster = Cluster::start_with(ClusterOptions {
        parties: 2,
        env: vec![
            ("FSC_MAX_CHUNK_BYTES".into(), "16384".into()),
            ("FSC_MAX_PENDING_CHUNK_BYTES".into(), "200000".into()),
        ],
        ..Default::default()
    })
    .await;
    let sets = [psi_sets(2, 1 << 12, 50), psi_sets(2, 1 << 12, 60)];
    let ids = [Uuid::new_v4(), Uuid::new_v4()];
    let request = |id: Uuid, input: &Value| json!({"id": id, "microprotocol": "SetIntersectionSize", "parties": cluster.parties, "input": input});
    let alice = cluster.nodes[0].client();
    // One after the other: the quota holds one list's chunks in flight, not two.
    for (received, (id, inputs)) in ids.iter().zip(&sets).enumerate() {
        let bob = cluster.nodes[1]
            .client()
            .submit(&request(*id, &inputs[1]))
            .await
            .unwrap();
        assert_eq!(bob.status.as_u16(), 202);
        fsc_e2e::eventually(Duration::from_secs(60), "bob's list waits at alice", || async {
            alice.metric("fsc_messages_received_total").await.unwrap() == (received + 1) as f64
                && alice.metric("fsc_chunks_pending_bytes").await.unwrap() == 0.0
        })
        .await;
    }
    assert_eq!(
        alice
            .metric("fsc_messages_rejected_total{reason=\"over_quota\"}")
            .await
            .unwrap(),
        0.0
    );
    cluster.nodes[0].kill();
    cluster.nodes[0].restart().await;
    // One after the other again: alice's lists to bob are held to the same quota.
    for ((id, inputs), expected) in ids.iter().zip(&sets).zip([50, 60]) {
        let submitted = cluster.nodes[0]
            .client()
            .submit(&request(*id, &inputs[0]))
            .await
            .unwrap();
        assert_eq!(submitted.status.as_u16(), 202, "{:?}", submitted.body);
        for view in pair_finals(&cluster, *id).await {
            assert_eq!(
                view["output"]["result"],
                json!({"size_intersection": expected}),
                "{view}\n{}",
                cluster.logs()
            );
        }
    }
}
