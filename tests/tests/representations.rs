//! The federatedsecure API's memory budget (`max_representation_bytes`) through the real binary:
//! large uploads cost about their size in resident memory, one past the budget is refused with a
//! 507 that says what to do, releasing an upload makes room again, and a task's inputs count
//! until `start`.

use fsc_e2e::{Cluster, ClusterOptions};
use reqwest::StatusCode;
use serde_json::Value;

const MIB: usize = 1024 * 1024;
/// The budget of the test nodes: three uploads of `UPLOAD` fit, a fourth does not.
const BUDGET: usize = 64 * MIB;
const UPLOAD: usize = 20 * MIB;

/// `{"args": [[1000000, 1000001, ...]]}`, with an array of about `bytes` bytes of JSON.
fn array_body(bytes: usize) -> String {
    let mut body = String::with_capacity(bytes + 64);
    body.push_str("{\"args\": [[");
    let mut n = 1_000_000u64;
    while body.len() < bytes {
        if n > 1_000_000 {
            body.push_str(", ");
        }
        body.push_str(&n.to_string());
        n += 1;
    }
    body.push_str("]]}");
    body
}

/// The node process's resident memory (VmRSS), in bytes.
fn resident(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the node's /proc status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("a VmRSS line");
    let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

async fn put(http: &reqwest::Client, node: &str, body: String) -> (StatusCode, Value) {
    let response = http
        .put(format!("{node}/representations"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap_or(Value::Null))
}

async fn metric(http: &reqwest::Client, node: &str, name: &str) -> Option<u64> {
    let text = http
        .get(format!("{node}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn uploads_cost_their_size_and_stop_at_the_budget() {
    let cluster = Cluster::start_with(ClusterOptions {
        parties: 2,
        env: vec![("FSC_MAX_REPRESENTATION_BYTES".into(), BUDGET.to_string())],
        ..Default::default()
    })
    .await;
    let node = &cluster.nodes[0];
    let pid = node.pid().expect("a running node");
    let http = reqwest::Client::new();
    let body = array_body(UPLOAD);
    let before = resident(pid);

    let mut uploads = Vec::new();
    for _ in 0..3 {
        let (status, answer) = put(&http, &node.url, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        uploads.push(answer["uuid"].as_str().unwrap().to_string());
    }
    let after = resident(pid);
    // The budget counts the array's text: the body less `{"args": [` and `]}`.
    let held = 3 * (body.len() - 12);
    eprintln!(
        "resident memory: {} MiB before, {} MiB after 3 uploads of {} MiB",
        before / MIB,
        after / MIB,
        UPLOAD / MIB
    );
    // Measured: 37 MiB before, 108 after (315 when values were kept as `Value` trees).
    assert!(
        after.saturating_sub(before) < 2 * held,
        "3 uploads of {} MiB grew the node by {} MiB\n{}",
        UPLOAD / MIB,
        after.saturating_sub(before) / MIB,
        cluster.logs()
    );
    let counted = metric(&http, &node.url, "fsc_representation_bytes").await;
    assert_eq!(counted, Some(held as u64), "fsc_representation_bytes");

    let (status, refusal) = put(&http, &node.url, body.clone()).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{refusal}");
    let message = refusal
        .as_str()
        .expect("the federatedsecure error format: a JSON string");
    for needed in ["max_representation_bytes", "DELETE", "representation_ttl_s", "64.0 MiB"] {
        assert!(message.contains(needed), "{needed:?} missing from: {message}");
    }

    let released = http
        .delete(format!("{}/representation/{}", node.url, uploads[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(released.status(), StatusCode::OK);
    let (status, answer) = put(&http, &node.url, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "after a DELETE it fits again: {answer}");

    // What was uploaded is what is downloaded.
    let downloaded: Value = http
        .get(format!(
            "{}/representation/{}",
            node.url,
            answer["uuid"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sent: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(downloaded["type"], "object");
    assert_eq!(downloaded["object"], sent["args"][0]);
}

/// A task's inputs count against the budget until `start` hands them to the runtime.
#[tokio::test]
async fn task_inputs_are_held_until_start() {
    let cluster = Cluster::start_with(ClusterOptions {
        parties: 2,
        env: vec![("FSC_MAX_REPRESENTATION_BYTES".into(), BUDGET.to_string())],
        ..Default::default()
    })
    .await;
    let node = &cluster.nodes[0].url;
    let http = reqwest::Client::new();
    let send = |method: reqwest::Method, path: String, body: String| {
        let request = http.request(method, format!("{node}{path}")).body(body);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let uuid = |answer: (StatusCode, Value)| {
        assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
        answer.1["uuid"].as_str().unwrap().to_string()
    };
    let method = |object: String, name: &'static str| {
        send(
            reqwest::Method::GET,
            format!("/representation/{object}/{name}"),
            String::new(),
        )
    };
    let patch = |object: &str, body: String| send(reqwest::Method::PATCH, format!("/representation/{object}"), body);

    let simon = uuid(send(reqwest::Method::POST, "/representations".into(), "{}".into()).await);
    let create_task = uuid(method(simon, "create_task").await);
    let network = serde_json::json!({"nodes": [node, cluster.nodes[1].url], "uuid": "inputs", "myself": 0});
    let body = serde_json::json!({"args": ["SecureSum", network]}).to_string();
    let task = uuid(patch(&create_task, body).await);
    let input = uuid(method(task.clone(), "input").await);
    let start = uuid(method(task, "start").await);

    // Strings, so that `start` fails at once, as bad input, without a computation.
    let text = format!("\"{}\"", "x".repeat(UPLOAD));
    for _ in 0..3 {
        let (status, answer) = patch(&input, format!("{{\"args\": [{text}]}}")).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let held = metric(&http, node, "fsc_representation_bytes").await;
    assert_eq!(held, Some(3 * text.len() as u64));
    let (status, refusal) = patch(&input, format!("{{\"args\": [{text}]}}")).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{refusal}");

    let (status, answer) = patch(&start, String::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(metric(&http, node, "fsc_representation_bytes").await, Some(0));
}
