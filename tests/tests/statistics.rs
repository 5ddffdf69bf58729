//! The statistics and order-statistics microprotocols through `/v1` on real nodes: results at
//! every party, parameters, and failures that reach every party with their reason (bad input is a
//! 400 at its party; disagreeing ranks fail everywhere).

use fsc_e2e::Cluster;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Submits `inputs[i]` at node i under one new id; returns the id and each submission's answer.
async fn submit(
    cluster: &Cluster,
    microprotocol: &str,
    parameters: Value,
    inputs: &[Value],
) -> (Uuid, Vec<(u16, Value)>) {
    let id = Uuid::new_v4();
    let mut answers = Vec::new();
    for (node, input) in cluster.nodes.iter().zip(inputs) {
        let request = json!({"id": id, "microprotocol": microprotocol, "parties": cluster.parties,
                             "parameters": parameters, "input": input});
        let answer = node.client().submit(&request).await.expect("submit");
        answers.push((answer.status.as_u16(), answer.body));
    }
    (id, answers)
}

async fn results(cluster: &Cluster, microprotocol: &str, parameters: Value, inputs: &[Value]) -> Value {
    let (id, answers) = submit(cluster, microprotocol, parameters, inputs).await;
    assert!(answers.iter().all(|(status, _)| *status == 202), "{answers:?}");
    let finals = cluster.finals(id, Duration::from_secs(30)).await;
    for view in &finals {
        assert_eq!(view["status"], "succeeded", "{view}");
        assert_eq!(view["output"], finals[0]["output"]);
    }
    finals[0]["output"]["result"].clone()
}

#[tokio::test]
async fn every_party_gets_each_protocols_result() {
    let cluster = Cluster::start(3).await;
    let numbers = [json!([1, 5, 9]), json!([2, 6.5]), json!([3, 7, -8])];
    let result = results(&cluster, "SecureMedian", json!({}), &numbers).await;
    assert_eq!(result, json!({"median": 4.0}));
    let result = results(&cluster, "MinimumMaximum", json!({"bits_per_round": 4}), &numbers).await;
    assert_eq!(result, json!({"samples": 8, "minimum": -8, "maximum": 9}));
    let kth = numbers
        .clone()
        .map(|a| json!([{"array": a, "rank": 7, "lower_bound": -10, "upper_bound": 10}]));
    assert_eq!(
        results(&cluster, "KthElement", json!({}), &kth).await,
        json!({"samples": 8, "item": 7})
    );
    let result = results(&cluster, "StatisticsUnivariate", json!({"digits_after": 3}), &numbers).await;
    assert_eq!(
        (result["samples"].clone(), result["mean"].clone()),
        (json!(8), json!(3.1875))
    );
    let pairs = [json!([[1, 2]]), json!([[2, 4], [3, 6]]), json!([])];
    let result = results(&cluster, "StatisticsBivariate", json!({}), &pairs).await;
    assert_eq!(result["regression_slope"], json!(2.0));
    let words = [json!(["x", "y"]), json!(["y"]), json!([])];
    let result = results(
        &cluster,
        "StatisticsFrequency",
        json!({"categories": ["x", "y", "z"]}),
        &words,
    )
    .await;
    assert_eq!(result, json!({"histogram": {"x": 1, "y": 2, "z": 0}, "mode": "y"}));
    let cells = [json!([["a", 1]]), json!([["b", 1], ["a", 2]]), json!([["a", 1]])];
    let result = results(&cluster, "StatisticsContingency", json!({"columns": [1, 2]}), &cells).await;
    assert_eq!(
        result,
        json!({"table": {"a": {"1": 2, "2": 1}, "b": {"1": 1, "2": 0}}, "mode": ["a", 1]})
    );
}

#[tokio::test]
async fn a_bad_value_is_a_400_at_its_party_and_fails_the_others_with_the_reason() {
    let cluster = Cluster::start(3).await;
    let started = Instant::now();
    let (id, answers) = submit(
        &cluster,
        "SecureMedian",
        json!({}),
        &[
            json!([1]),
            serde_json::from_str::<Value>("[2, 1e400]").unwrap(),
            json!([3]),
        ],
    )
    .await;
    let (status, body) = &answers[1];
    assert_eq!(*status, 400, "{body}");
    assert_eq!(body["code"], "invalid_input");
    assert!(
        body["detail"].as_str().unwrap().contains("is not a finite number"),
        "{body}"
    );
    for party in [0, 2] {
        let view = cluster.nodes[party]
            .client()
            .wait_final(id, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(view["status"], "failed", "{view}");
        assert_eq!(view["error"]["party"], "bob");
        assert_eq!(view["error"]["code"], "invalid_input", "{view}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn parties_that_disagree_on_the_rank_all_fail_saying_so() {
    let cluster = Cluster::start(3).await;
    let input = |rank: u64| json!([{"array": [1, 2, 3], "rank": rank, "lower_bound": 0, "upper_bound": 9}]);
    let (id, answers) = submit(&cluster, "KthElement", json!({}), &[input(2), input(2), input(3)]).await;
    assert!(answers.iter().all(|(status, _)| *status == 202), "{answers:?}");
    // Every party can find it; one that hears another's abort first is told the code only.
    let finals = cluster.finals(id, Duration::from_secs(10)).await;
    assert!(
        finals.iter().all(|view| view["error"]["code"] == "no_result"),
        "{finals:?}"
    );
    assert!(
        finals.iter().any(|view| view["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disagree on rank and bounds")),
        "{finals:?}"
    );
    let (id, _) = submit(&cluster, "KthElement", json!({}), &[input(10), input(10), input(10)]).await;
    let finals = cluster.finals(id, Duration::from_secs(10)).await;
    assert!(
        finals.iter().all(|view| view["error"]["code"] == "no_result"),
        "{finals:?}"
    );
    assert!(
        finals.iter().any(|view| view["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rank 10 is beyond the 9 values")),
        "{finals:?}"
    );
}
