//! Admission under load: a node at capacity refuses new computations at once (429 with
//! `Retry-After`) and keeps answering, computing and firing deadlines.

use fsc_e2e::{Cluster, ClusterOptions, random_sums};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

const FINAL: Duration = Duration::from_secs(60);
/// How long any one request may take before the test calls the node stalled.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

fn cluster_with_capacity(capacity: usize) -> ClusterOptions {
    ClusterOptions {
        parties: 3,
        env: vec![("FSC_MAX_ACTIVE_COMPUTATIONS".into(), capacity.to_string())],
        ..Default::default()
    }
}

/// `POST /v1/computations/batch`, answered within `ANSWER_WITHIN`: (Retry-After, results).
async fn post_batch(http: &reqwest::Client, node: &str, items: &[Value]) -> (Option<u64>, Vec<Value>) {
    let started = Instant::now();
    let request = http
        .post(format!("{node}/v1/computations/batch"))
        .json(&json!({"computations": items}))
        .send();
    let response = tokio::time::timeout(Duration::from_secs(30), request)
        .await
        .unwrap_or_else(|_| panic!("{node}: a batch of {} went unanswered for 30 s", items.len()))
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed < ANSWER_WITHIN,
        "{node}: a batch of {} took {elapsed:?}",
        items.len()
    );
    assert_eq!(response.status(), 200);
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let body: Value = response.json().await.unwrap();
    (retry_after, body["results"].as_array().unwrap().clone())
}

fn at(view: &Value, field: &str) -> OffsetDateTime {
    OffsetDateTime::parse(view[field].as_str().unwrap(), &Rfc3339).unwrap()
}

/// With `max_active_computations` reached, a new submission is refused at once with a retry
/// hint and nothing of it is kept; the node keeps answering, and the same request is accepted
/// once computations have finished.
#[tokio::test]
async fn a_submission_beyond_capacity_is_refused_with_a_retry_hint() {
    let cluster = Cluster::start_with(cluster_with_capacity(2)).await;
    let alice = cluster.nodes[0].client();
    let (first, second, third) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    for id in [first, second] {
        assert_eq!(cluster.submit_at(0, id, json!(1)).await, 202);
    }
    let response = reqwest::Client::new()
        .post(format!("{}/v1/computations", cluster.nodes[0].url))
        .json(&cluster.sum_request(third, json!(1)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "too_many_computations", "{problem}");
    assert_eq!(problem["retry_after_s"], 1, "{problem}");
    assert!(alice.get(third, Duration::ZERO).await.is_err(), "nothing of it is kept");
    // A known computation is no new work: its retry is answered as always.
    assert_eq!(cluster.submit_at(0, first, json!(1)).await, 200);

    for node in &cluster.nodes[1..] {
        for id in [first, second] {
            node.client().submit(&cluster.sum_request(id, json!(2))).await.unwrap();
        }
    }
    alice.wait_final(first, FINAL).await.unwrap();
    alice.wait_final(second, FINAL).await.unwrap();
    assert_eq!(cluster.submit_at(0, third, json!(1)).await, 202);
    for node in &cluster.nodes[1..] {
        node.client()
            .submit(&cluster.sum_request(third, json!(2)))
            .await
            .unwrap();
    }
    for view in cluster.finals(third, FINAL).await {
        assert_eq!(view["output"]["result"]["sum"], json!(5.0), "{view}");
    }
}

/// One computation waits for its deadline at alice while every party's client submits five
/// times the nodes' capacity in batches (carol's in the opposite order), retrying what is refused
/// after `Retry-After`: every batch is answered within 5 s, the deadline fires on time, and every
/// computation succeeds at every party. (A node used to stop waiting for work when a batch did
/// not fit, and froze.)
#[tokio::test]
async fn five_times_capacity_in_batches_never_stalls_the_node() {
    const CAPACITY: usize = 100;
    let cluster = Cluster::start_with(cluster_with_capacity(CAPACITY)).await;
    let lonely = Uuid::new_v4();
    let mut request = cluster.sum_request(lonely, json!(1));
    request["deadline_s"] = json!(2);
    assert_eq!(
        cluster.nodes[0]
            .client()
            .submit(&request)
            .await
            .unwrap()
            .status
            .as_u16(),
        202
    );

    let (ids, per_node, sums) = random_sums(&cluster, 5 * CAPACITY, 9);
    let http = reqwest::Client::new();
    let clients = cluster
        .nodes
        .iter()
        .zip(&per_node)
        .enumerate()
        .map(|(i, (node, items))| {
            let http = http.clone();
            async move {
                let (mut refused, mut batches) = (0, 0);
                let mut waiting: Vec<Value> = items.clone();
                // carol's client goes through the list the other way round: each node then fills
                // up with computations the others refuse, and must still join them.
                if i == 2 {
                    waiting.reverse();
                }
                while !waiting.is_empty() {
                    let mut again = Vec::new();
                    let mut retry_after = None;
                    for chunk in waiting.chunks(2 * CAPACITY) {
                        let (retry, results) = post_batch(&http, &node.url, chunk).await;
                        batches += 1;
                        for (item, result) in chunk.iter().zip(results) {
                            if result["status"] == "pending" || result["status"] == "running" {
                                continue;
                            }
                            assert_eq!(result["error"]["code"], "too_many_computations", "{result}");
                            again.push(item.clone());
                        }
                        retry_after = retry_after.max(retry);
                    }
                    refused += again.len();
                    if !again.is_empty() {
                        let wait = retry_after.expect("a refusal comes with Retry-After");
                        tokio::time::sleep(Duration::from_secs(wait)).await;
                    }
                    waiting = again;
                }
                (refused, batches)
            }
        });
    let outcomes = futures::future::join_all(clients).await;
    for (node, (refused, batches)) in cluster.nodes.iter().zip(outcomes) {
        assert!(refused > 0, "{}: 5x capacity must meet refusals", node.id);
        eprintln!(
            "{}: {batches} batches, {refused} items refused and resubmitted",
            node.id
        );
    }

    let view = cluster.nodes[0].client().wait_final(lonely, FINAL).await.unwrap();
    assert_eq!(view["error"]["code"], "deadline_exceeded", "{view}");
    let late = at(&view, "finished_at") - at(&view, "deadline_at");
    assert!(late < time::Duration::seconds(2), "the deadline fired {late} late");
    fsc_e2e::assert_all_summed(&cluster, &ids, &sums).await;
}
