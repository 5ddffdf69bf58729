//! What other parties receive when one party's input is refused: a reason code, the party and a
//! fixed text, never a byte of the input, at every layer a peer has (the signed abort as it
//! waits on the broker, the peer's stored failure, its API answer, its operator page, its store
//! files). The submitting client alone is told the detail.

use fsc_client::Client;
use fsc_e2e::Cluster;
use fsc_node::envelope::Kind;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// One refused input: the computation, and the text of the input that must not travel.
struct Case {
    microprotocol: &'static str,
    parties: &'static [&'static str],
    parameters: Value,
    /// alice's input, which her node refuses with a detail quoting `marker`.
    bad: Value,
    /// The input of every other party.
    good: Value,
    marker: &'static str,
}

fn cases() -> Vec<Case> {
    let three = &["alice", "bob", "carol"];
    let two = &["alice", "carol"];
    let big = "3141592653589793238462643383279502884197169399375105820974944592307816406286";
    let case = |microprotocol, parties, parameters, bad, good, marker| Case {
        microprotocol,
        parties,
        parameters,
        bad,
        good,
        marker,
    };
    vec![
        case(
            "SecureSum",
            three,
            // Fixed point, whose range error quotes the number (beyond ±2^240 at 12 decimals).
            json!({"digits_after": 12}),
            serde_json::from_str(big).unwrap(),
            json!(1),
            "1415926535897932384626",
        ),
        case(
            "MinimumMaximum",
            three,
            json!({}),
            serde_json::from_str("[3.14159265358979323846e400]").unwrap(),
            json!([1]),
            "14159265358979323846",
        ),
        case(
            "KthElement",
            three,
            json!({}),
            serde_json::from_str(
                r#"{"array": [2.71828182845904523536e400], "rank": 1, "lower_bound": 0, "upper_bound": 9}"#,
            )
            .unwrap(),
            json!({"array": [1], "rank": 1, "lower_bound": 0, "upper_bound": 9}),
            "71828182845904523536",
        ),
        case(
            "SecureMedian",
            three,
            json!({}),
            serde_json::from_str("[1.41421356237309504880e400]").unwrap(),
            json!([1]),
            "41421356237309504880",
        ),
        case(
            "StatisticsUnivariate",
            three,
            json!({}),
            serde_json::from_str("[1.73205080756887729352e400]").unwrap(),
            json!([1]),
            "73205080756887729352",
        ),
        case(
            "StatisticsBivariate",
            three,
            json!({}),
            serde_json::from_str("[[6.02214076e400, 1.0]]").unwrap(),
            json!([[1.0, 2.0]]),
            "6.02214076",
        ),
        case(
            "StatisticsFrequency",
            three,
            json!({"categories": ["a", "b"]}),
            json!(["a", "MARKER-frequency"]),
            json!(["b"]),
            "MARKER-frequency",
        ),
        case(
            "StatisticsContingency",
            three,
            json!({"rows": ["a"], "columns": ["x"]}),
            json!([["MARKER-contingency", "x"]]),
            json!([["a", "x"]]),
            "MARKER-contingency",
        ),
        case(
            "SecureMatrixMultiplication",
            two,
            json!({}),
            json!([[6.62607015e80]]),
            json!([[1.0]]),
            "6.62607015",
        ),
        case(
            "StatisticsRegressionOLSVertical",
            two,
            json!({}),
            serde_json::from_str("[[1.380649e400], [2.0]]").unwrap(),
            json!([1.0, 2.0]),
            "1.380649",
        ),
        case(
            "SetIntersection",
            three,
            json!({}),
            json!("MARKER-intersection"),
            json!([["a"]]),
            "MARKER-intersection",
        ),
        case(
            "SetIntersectionSize",
            three,
            json!({}),
            json!("MARKER-size"),
            json!([["a"]]),
            "MARKER-size",
        ),
        case(
            "StatisticsContingencyVertical",
            two,
            json!({}),
            json!([["MARKER-vertical"]]),
            json!([["id", "y"]]),
            "MARKER-vertical",
        ),
    ]
}

fn request(case: &Case, id: Uuid, input: &Value) -> Value {
    json!({"id": id, "microprotocol": case.microprotocol, "parties": case.parties,
           "parameters": case.parameters, "input": input, "deadline_s": 600})
}

/// Every abort alice sent carol for `id`, opened with carol's keys, as it waits on the broker.
async fn aborts_waiting_for_carol(cluster: &Cluster, id: Uuid) -> Vec<Vec<u8>> {
    cluster
        .waiting_on_broker(id, "carol", "alice")
        .await
        .into_iter()
        .filter(|opened| opened.header.kind == Kind::Abort)
        .map(|opened| opened.plaintext)
        .collect()
}

fn store_bytes(cluster: &Cluster, party: &str) -> Vec<u8> {
    ["fsc.sqlite", "fsc.sqlite-wal"]
        .iter()
        .filter_map(|file| std::fs::read(cluster.path().join(party).join(file)).ok())
        .flatten()
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

async fn page(client: &Client) -> String {
    reqwest::get(format!("{}/", client.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// For an input error of every microprotocol: alice's client hears the detail (the marker: the
/// input does make the engine quote it), the abort carol receives, bob's and carol's stored
/// failures, API answers and operator pages, and their store files hold no byte of it; they name
/// alice and the reason code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_error_reaches_peers_as_a_code_and_a_party_only() {
    let mut cluster = Cluster::start(3).await;
    // carol is away: what alice sends her stays on the broker, where the test reads it.
    cluster.node_mut("carol").kill();
    let (alice, bob) = (cluster.node("alice").client(), cluster.node("bob").client());
    let cases = cases();
    let mut ids = Vec::new();
    for case in &cases {
        let id = Uuid::new_v4();
        ids.push(id);
        if case.parties.contains(&"bob") {
            let answer = bob.submit(&request(case, id, &case.good)).await.unwrap();
            assert_eq!(answer.status, 202, "{}: {}", case.microprotocol, answer.body);
        }
        let refused = alice.submit(&request(case, id, &case.bad)).await.unwrap();
        assert_eq!(refused.status, 400, "{}: {}", case.microprotocol, refused.body);
        let detail = refused.body.to_string();
        if !case.microprotocol.starts_with("SetIntersection") {
            assert!(
                detail.contains(case.marker),
                "{}: the detail quotes the input: {detail}",
                case.microprotocol
            );
        }
        let waited = std::time::Instant::now();
        let aborts = loop {
            let found = aborts_waiting_for_carol(&cluster, id).await;
            if !found.is_empty() {
                break found;
            }
            assert!(
                waited.elapsed() < Duration::from_secs(20),
                "{}: no abort for carol",
                case.microprotocol
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        for abort in &aborts {
            assert!(
                !contains(abort, case.marker),
                "{}: carol receives {}",
                case.microprotocol,
                String::from_utf8_lossy(abort)
            );
            let signed: Value = serde_json::from_slice(abort).unwrap();
            assert_eq!(signed["reason"]["code"], "invalid_input", "{signed}");
        }
        if case.parties.contains(&"bob") {
            let failed = bob.wait_final(id, Duration::from_secs(20)).await.unwrap();
            assert_eq!(failed["status"], "failed");
            assert_eq!(failed["error"]["code"], "invalid_input", "{failed}");
            assert_eq!(failed["error"]["party"], "alice", "{failed}");
            assert!(
                !failed.to_string().contains(case.marker),
                "{}: bob answers {failed}",
                case.microprotocol
            );
        }
    }

    cluster.node_mut("carol").restart().await;
    let carol = cluster.node("carol").client();
    for (case, id) in cases.iter().zip(&ids) {
        let answer = carol.submit(&request(case, *id, &case.good)).await.unwrap();
        assert!(answer.status.is_success(), "{}: {}", case.microprotocol, answer.body);
        let failed = carol.wait_final(*id, Duration::from_secs(20)).await.unwrap();
        assert_eq!(failed["status"], "failed", "{failed}");
        assert_eq!(failed["error"]["code"], "invalid_input", "{failed}");
        assert_eq!(failed["error"]["party"], "alice", "{failed}");
        assert!(
            !failed.to_string().contains(case.marker),
            "{}: carol answers {failed}",
            case.microprotocol
        );
    }
    for (party, client) in [("bob", &bob), ("carol", &carol)] {
        let page = page(client).await;
        let store = store_bytes(&cluster, party);
        for case in &cases {
            assert!(!page.contains(case.marker), "{party}'s page shows {}", case.marker);
            assert!(!contains(&store, case.marker), "{party}'s store holds {}", case.marker);
        }
    }
}
