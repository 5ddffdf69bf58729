//! The v1 API's contract against a real node: idempotency, conflicts, errors as problem
//! documents, pagination, limits, long polling, authentication and the operational endpoints.

use fsc_e2e::{Cluster, ClusterOptions};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

async fn post(url: &str, body: &str) -> (StatusCode, Value, String) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, response.json().await.unwrap_or(Value::Null), content_type)
}

async fn get(url: &str) -> (StatusCode, Value) {
    let response = reqwest::get(url).await.unwrap();
    (response.status(), response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn submissions_are_idempotent_and_conflicts_are_409() {
    let cluster = Cluster::start(2).await;
    let url = format!("{}/v1/computations", cluster.nodes[0].url);
    let id = Uuid::new_v4();
    let request = cluster.sum_request(id, json!(5)).to_string();
    let (status, body, _) = post(&url, &request).await;
    assert_eq!(
        (status, &body),
        (StatusCode::ACCEPTED, &json!({"id": id, "status": "pending"}))
    );
    let (status, body, _) = post(&url, &request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], json!(id));
    // Same id and definition, other input: the same answer (the first input stands).
    let (status, body, _) = post(&url, &cluster.sum_request(id, json!(6)).to_string()).await;
    assert_eq!(
        (status, &body),
        (StatusCode::OK, &json!({"id": id, "status": "pending"}))
    );
    // Same id, other parameters.
    let mut conflicting = cluster.sum_request(id, json!(5));
    conflicting["parameters"] = json!({"digits_after": 3});
    let (status, body, content_type) = post(&url, &conflicting.to_string()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "conflict");
    assert_eq!(content_type, "application/problem+json");
}

#[tokio::test]
async fn bad_requests_are_problem_documents() {
    let cluster = Cluster::start(2).await;
    let node = &cluster.nodes[0].url;
    let url = format!("{node}/v1/computations");
    let parties = json!(["alice", "bob"]);
    let cases = [
        ("not json", StatusCode::BAD_REQUEST, "invalid_body"),
        (
            r#"{"microprotocol": "SecureSum", "parties": ["alice", "bob"]}"#,
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            &*json!({"microprotocol": "SecureSum", "parties": parties, "input": 1, "extra": 1}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            &*json!({"microprotocol": "SecureSum", "parties": ["alice", "mallory"], "input": 1}).to_string(),
            StatusCode::BAD_REQUEST,
            "unknown_party",
        ),
        (
            &*json!({"microprotocol": "SecureSum", "parties": ["bob", "bob"], "input": 1}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_parties",
        ),
        (
            &*json!({"microprotocol": "SecureSum", "parties": ["bob"], "input": 1}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_parties",
        ),
        (
            &*json!({"microprotocol": "Nope", "parties": parties, "input": 1}).to_string(),
            StatusCode::NOT_IMPLEMENTED,
            "unknown_microprotocol",
        ),
        (
            &*json!({"microprotocol": "SecureSum", "parties": parties, "input": 1, "parameters": {"digits": 1}})
                .to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_parameters",
        ),
        (
            // Beyond the ±2^1100 (about 1.36e331) of the exact sum.
            &*format!(
                r#"{{"microprotocol": "SecureSum", "parties": {}, "input": 1{}}}"#,
                json!(parties),
                "0".repeat(340)
            ),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            &*json!({"microprotocol": "SecureSum", "parties": parties, "input": [1, "2"]}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            &*json!({"microprotocol": "SecureSum", "parties": parties, "input": 1, "deadline_s": 0}).to_string(),
            StatusCode::BAD_REQUEST,
            "invalid_deadline",
        ),
    ];
    for (body, want_status, want_code) in cases {
        let (status, problem, content_type) = post(&url, body).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (want_status, Some(want_code)),
            "{body}: {problem}"
        );
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(problem["status"], json!(want_status.as_u16()));
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    // A body over max_request_bytes (32 MiB) is refused from its Content-Length, before it is
    // read. (Sent by hand: a client still writing 40 MB when the 413 comes gets a broken pipe.)
    let address = node.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /v1/computations HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: 40000000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");

    for (path, code) in [
        ("/v1/computations/not-a-uuid", "invalid_id"),
        ("/v1/computations?status=done", "invalid_query"),
        ("/v1/computations?limit=0", "invalid_query"),
        ("/v1/computations?cursor=x", "invalid_query"),
    ] {
        let (status, problem) = get(&format!("{node}{path}")).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{path}"
        );
    }
    let (status, problem) = get(&format!("{node}/v1/computations/{}", Uuid::new_v4())).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, _) = get(&format!("{node}/nowhere")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn batches_answer_per_item_and_lists_page_newest_first() {
    let cluster = Cluster::start(2).await;
    let client = cluster.nodes[0].client();
    let ids: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
    let mut items: Vec<Value> = ids.iter().map(|id| cluster.sum_request(*id, json!(1))).collect();
    items.insert(2, json!({"microprotocol": "SecureSum"}));
    items.push(cluster.sum_request(Uuid::new_v4(), json!("x")));
    let results = client.submit_batch(&items).await.unwrap();
    assert_eq!(results.len(), 7);
    assert_eq!(results[2]["error"]["code"], "invalid_body");
    assert_eq!(results[6]["error"]["code"], "invalid_input");
    assert!(
        results
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 2 && *i != 6)
            .all(|(_, r)| r["status"] == "pending")
    );

    let base = &cluster.nodes[0].url;
    let mut seen = Vec::new();
    let mut url = format!("{base}/v1/computations?limit=2");
    loop {
        let (status, page) = get(&url).await;
        assert_eq!(status, StatusCode::OK);
        seen.extend(
            page["computations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("{base}/v1/computations?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6, "5 pending and 1 failed: {seen:?}");
    let (_, failed) = get(&format!("{base}/v1/computations?status=failed")).await;
    assert_eq!(failed["computations"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn long_polling_returns_when_the_computation_finishes() {
    let cluster = Cluster::start(2).await;
    let id = Uuid::new_v4();
    let alice = cluster.nodes[0].client();
    alice.submit(&cluster.sum_request(id, json!(1))).await.unwrap();
    let waiting = tokio::spawn({
        let alice = alice.clone();
        async move {
            let started = Instant::now();
            (alice.get(id, Duration::from_secs(30)).await.unwrap(), started.elapsed())
        }
    });
    let still_pending = alice.get(id, Duration::ZERO).await.unwrap();
    assert_eq!(still_pending["status"], "pending");
    cluster.nodes[1]
        .client()
        .submit(&cluster.sum_request(id, json!(2)))
        .await
        .unwrap();
    let (view, waited) = waiting.await.unwrap();
    assert_eq!(view["status"], "succeeded");
    assert!(waited < Duration::from_secs(10), "long poll returned after {waited:?}");
}

#[tokio::test]
async fn operational_endpoints_and_bearer_tokens() {
    let digest = fsc_node::keys::api_token_sha256("s3cret");
    let cluster = Cluster::start_with(ClusterOptions {
        parties: 2,
        env: vec![(
            "FSC_CLIENTS".into(),
            format!(r#"[{{name = "ops", token_sha256 = "{digest}"}}]"#),
        )],
        ..Default::default()
    })
    .await;
    let base = &cluster.nodes[0].url;
    assert_eq!(get(&format!("{base}/healthz")).await.0, StatusCode::OK);
    assert_eq!(get(&format!("{base}/readyz")).await.0, StatusCode::OK);
    let (status, problem) = get(&format!("{base}/v1/node")).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let authed = fsc_client::Client::new(base, Some("s3cret".into()));
    let node = authed.node().await.unwrap();
    assert_eq!(node["id"], "alice");
    assert_eq!(node["peers"][0]["id"], "bob");
    assert!(
        authed
            .metrics()
            .await
            .unwrap()
            .contains("fsc_computations_finished_total{status=\"succeeded\"} 0")
    );
    let wrong = fsc_client::Client::new(base, Some("guess".into()));
    assert!(wrong.node().await.is_err());
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let cluster = Cluster::start(2).await;
    let (status, document) = get(&format!("{}/openapi.json", cluster.nodes[0].url)).await;
    assert_eq!(status, StatusCode::OK);
    let paths = document["paths"].as_object().expect("an OpenAPI document with paths");
    for (path, method) in [
        ("/v1/computations", "post"),
        ("/v1/computations", "get"),
        ("/v1/computations/batch", "post"),
        ("/v1/computations/{id}", "get"),
        ("/v1/computations/{id}/receipt", "get"),
        ("/v1/node", "get"),
        ("/v1/budget", "get"),
        ("/v1/datasets", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not documented"
        );
    }
}
