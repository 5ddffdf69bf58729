//! A node's disclosure-control policy (`[policy]` in node.toml), end to end: alice's policy
//! refuses a microprotocol, a co-party, too few local records, a client's microprotocol and, as a
//! helper, an inviting party it does not compute with. Each refused computation fails at every
//! party with `policy_refused` and the rule; alice's client alone hears the detail (403); and
//! what alice sent carol for it, as it waits on the broker while carol is away, is aborts only:
//! no message derived from alice's input. `min_total_samples`: alice refuses a definition without
//! the check of the records in all, too few records in all fail every party, enough succeed, and
//! her metrics count her refusals by rule.

use fsc_client::Client;
use fsc_e2e::Cluster;
use fsc_node::envelope::Kind;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

const POLICY: &str = r#"
[policy]
microprotocols = ["SecureSum", "StatisticsFrequency", "SecureMatrixMultiplication"]
parties = ["bob", "carol"]
min_local_samples = 2

[[policy.clients]]
name = "local"
microprotocols = ["SecureSum", "SecureMatrixMultiplication"]
"#;

/// One computation alice's policy refuses.
struct Case {
    rule: &'static str,
    microprotocol: &'static str,
    parties: &'static [&'static str],
    /// alice's input.
    input: Value,
    /// Every other party's input.
    other: Value,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            rule: "microprotocols",
            microprotocol: "SecureMedian",
            parties: &["alice", "bob", "carol"],
            input: json!([1, 2, 3]),
            other: json!([4, 5]),
        },
        Case {
            rule: "parties",
            microprotocol: "SecureSum",
            parties: &["alice", "bob", "carol", "dave"],
            input: json!([1, 2, 3]),
            other: json!(4),
        },
        Case {
            rule: "min_local_samples",
            microprotocol: "SecureSum",
            parties: &["alice", "bob", "carol"],
            input: json!([41]),
            other: json!(4),
        },
        Case {
            rule: "client_microprotocols",
            microprotocol: "StatisticsFrequency",
            parties: &["alice", "bob", "carol"],
            input: json!(["a", "b", "c"]),
            other: json!(["a"]),
        },
    ]
}

fn request(microprotocol: &str, parties: &[&str], parameters: Value, id: Uuid, input: &Value) -> Value {
    json!({"id": id, "microprotocol": microprotocol, "parties": parties, "parameters": parameters,
           "input": input, "deadline_s": 600})
}

/// The kinds of every message alice sent carol for `id` that waits on the broker.
async fn sent_to_carol(cluster: &Cluster, id: Uuid) -> Vec<Kind> {
    let opened = cluster.waiting_on_broker(id, "carol", "alice").await;
    opened.into_iter().map(|o| o.header.kind).collect()
}

/// Submits `input` for `id` through `client`; the HTTP status and the body.
async fn submit(client: &Client, case: (&str, &[&str], Value), id: Uuid, input: Value) -> (u16, Value) {
    let (microprotocol, parties, parameters) = case;
    let answer = client
        .submit(&request(microprotocol, parties, parameters, id, &input))
        .await
        .unwrap();
    (answer.status.as_u16(), answer.body)
}

/// A federatedsecure API call at `base`: the status and the JSON answer.
async fn federatedsecure(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// Waits until alice's abort for `id` waits for carol; then every message alice sent carol for
/// it must be an abort, or the receipt of her failure (signed digests of the definition and the
/// reason code).
async fn assert_only_aborts_for_carol(cluster: &Cluster, id: Uuid, what: &str) {
    let started = Instant::now();
    loop {
        let kinds = sent_to_carol(cluster, id).await;
        if kinds.contains(&Kind::Abort) {
            assert!(
                kinds.iter().all(|k| matches!(k, Kind::Abort | Kind::Receipt)),
                "{what}: alice sent carol {kinds:?}"
            );
            return;
        }
        assert!(started.elapsed() < WAIT, "{what}: no abort for carol");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A peer's final view: failed with `policy_refused`, alice at fault, the rule, no detail.
fn assert_refused_by_alice(view: &Value, rule: &str, what: &str) {
    assert_eq!(view["status"], "failed", "{what}: {view}");
    assert_eq!(view["error"]["code"], "policy_refused", "{what}: {view}");
    assert_eq!(view["error"]["party"], "alice", "{what}: {view}");
    assert_eq!(view["error"]["rule"], rule, "{what}: {view}");
    assert!(
        !view.to_string().contains("records"),
        "{what}: a peer sees the detail: {view}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_computation_fails_everywhere_naming_the_rule_and_nothing_is_sent() {
    let mut cluster = Cluster::start(4).await;
    cluster.append_config("alice", POLICY);
    // A node that does not know `[policy]` would not start (and the restart below would wait).
    let config = fsc_node::config::NodeConfig::load(&cluster.path().join("alice/node.toml"), |_| None)
        .expect("alice's node.toml with a [policy]");
    assert!(!config.policy.is_open());
    cluster.node_mut("alice").restart().await;
    // carol is away: what alice sends her stays on the broker, where the test reads it.
    cluster.node_mut("carol").kill();
    let (alice, bob, dave) = (
        cluster.node("alice").client(),
        cluster.node("bob").client(),
        cluster.node("dave").client(),
    );
    let sum = |parties: &'static [&'static str]| ("SecureSum", parties, Value::Null);

    // What the policy allows runs: a sum with bob, two records.
    let id = Uuid::new_v4();
    for (client, input) in [(&bob, json!(5)), (&alice, json!([1, 2]))] {
        let (status, body) = submit(client, sum(&["alice", "bob"]), id, input).await;
        assert_eq!(status, 202, "{body}");
    }
    let done = alice.wait_final(id, WAIT).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}\n{}", cluster.logs());
    assert_eq!(done["output"]["result"]["sum"], 8.0, "{done}");

    // The control: a sum the policy allows, with carol, who is away. What alice sends her waits
    // on the broker, and the reader below sees it as data.
    let control = Uuid::new_v4();
    let with_carol: &'static [&'static str] = &["alice", "bob", "carol"];
    let (status, body) = submit(&alice, sum(with_carol), control, json!([1, 2])).await;
    assert_eq!(status, 202, "{body}");
    let started = Instant::now();
    // Her first message to carol opens the computation: an Opening is data too.
    while !sent_to_carol(&cluster, control)
        .await
        .iter()
        .any(|k| matches!(k, Kind::Data | Kind::Opening))
    {
        assert!(
            started.elapsed() < WAIT,
            "alice's share for carol never reached the broker"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let cases = cases();
    let mut ids = Vec::new();
    for case in &cases {
        let id = Uuid::new_v4();
        ids.push(id);
        let definition = || (case.microprotocol, case.parties, Value::Null);
        // bob starts first: alice is invited by his messages, and must not answer with data.
        let (status, body) = submit(&bob, definition(), id, case.other.clone()).await;
        assert_eq!(status, 202, "{}: {body}", case.rule);
        // Refused, and the same request again on every try.
        for _ in 0..2 {
            let (status, body) = submit(&alice, definition(), id, case.input.clone()).await;
            assert_eq!(status, 403, "{}: {body}", case.rule);
            assert_eq!(body["code"], "policy_refused", "{}: {body}", case.rule);
            assert_eq!(body["rule"], case.rule, "{body}");
        }
        let own = alice.wait_final(id, WAIT).await.unwrap();
        assert_eq!(own["status"], "failed", "{own}");
        assert_eq!(own["error"]["code"], "policy_refused", "{own}");
        assert_eq!(own["error"]["rule"], case.rule, "{own}");
        let seen = bob.wait_final(id, WAIT).await.unwrap();
        assert_refused_by_alice(&seen, case.rule, case.rule);
        if case.parties.contains(&"dave") {
            let seen = cluster.final_at("dave", id, WAIT).await;
            assert_eq!(seen["error"]["code"], "policy_refused", "{seen}");
        }
        assert_only_aborts_for_carol(&cluster, id, case.rule).await;
    }
    let (_, body) = submit(&alice, sum(&["alice", "bob"]), Uuid::new_v4(), json!(7)).await;
    assert!(
        body["detail"].as_str().unwrap_or_default().contains("1 records"),
        "alice's client hears the detail: {body}"
    );

    // The federatedsecure API submits into the same admission: the same policy, the same answer.
    let url = &cluster.node("alice").url;
    let (_, simon) = federatedsecure(
        reqwest::Method::POST,
        format!("{url}/representations"),
        Some(json!({"args": [], "kwargs": {"protocol": "Simon"}})),
    )
    .await;
    let simon = simon["uuid"].as_str().unwrap();
    let (_, compute) = federatedsecure(
        reqwest::Method::GET,
        format!("{url}/representation/{simon}/compute"),
        None,
    )
    .await;
    let network = json!({"nodes": [url, &cluster.node("bob").url], "uuid": Uuid::new_v4().to_string(), "myself": 0});
    let call = json!({"args": [], "kwargs": {"microprotocol": "SecureMedian", "data": [1, 2, 3], "network": network}});
    let (status, message) = federatedsecure(
        reqwest::Method::PATCH,
        format!("{url}/representation/{}", compute["uuid"].as_str().unwrap()),
        Some(call),
    )
    .await;
    assert_eq!(status, 403, "{message}");
    assert!(
        message
            .as_str()
            .unwrap_or_default()
            .contains("policy rule microprotocols"),
        "{message}"
    );

    // As a helper: bob and dave's product names alice, whose policy does not compute with dave.
    let id = Uuid::new_v4();
    let product = || {
        (
            "SecureMatrixMultiplication",
            &["bob", "dave"][..],
            json!({"helper": "alice"}),
        )
    };
    for (client, input) in [(&bob, json!([[[1, 2]]])), (&dave, json!([[[1], [0]]]))] {
        // dave may find alice's refusal already there (200, failed): she refuses at bob's invite.
        let (status, body) = submit(client, product(), id, input).await;
        assert!(status == 202 || status == 200, "{body}");
    }
    for party in ["bob", "dave"] {
        let seen = cluster.node(party).client().wait_final(id, WAIT).await.unwrap();
        assert_refused_by_alice(&seen, "parties", &format!("helper, at {party}"));
    }
    let helper = cluster.final_at("alice", id, WAIT).await;
    assert_eq!(helper["error"]["rule"], "parties", "{helper}");

    // carol comes back: the control completes, and her submissions of the refused computations
    // meet alice's aborts, with the rule.
    cluster.node_mut("carol").restart().await;
    let carol = cluster.node("carol").client();
    for (client, input) in [(&bob, json!(3)), (&carol, json!(4))] {
        let (status, body) = submit(client, sum(with_carol), control, input).await;
        assert_eq!(status, 202, "{body}");
    }
    let done = alice.wait_final(control, WAIT).await.unwrap();
    assert_eq!(done["output"]["result"]["sum"], 10.0, "{done}");
    for (case, id) in cases.iter().zip(&ids) {
        let definition = (case.microprotocol, case.parties, Value::Null);
        let (status, body) = submit(&carol, definition, *id, case.other.clone()).await;
        assert!((200..300).contains(&status), "{}: {body}", case.rule);
        let seen = carol.wait_final(*id, WAIT).await.unwrap();
        assert_refused_by_alice(&seen, case.rule, &format!("{} at carol", case.rule));
    }
}

/// The count of `fsc_policy_refusals_total` for `rule` in `node`'s metrics.
async fn refusals(cluster: &Cluster, node: &str, rule: &str) -> u64 {
    let metrics = cluster.node(node).client().metrics().await.unwrap();
    let series = format!("fsc_policy_refusals_total{{rule=\"{rule}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_total_samples_counts_the_records_of_all_parties_before_anything_else() {
    let mut cluster = Cluster::start(3).await;
    cluster.append_config("alice", "[policy]\nmin_total_samples = 6\n");
    cluster.node_mut("alice").restart().await;
    let (alice, bob) = (cluster.node("alice").client(), cluster.node("bob").client());
    let three: &'static [&'static str] = &["alice", "bob", "carol"];
    assert_eq!(refusals(&cluster, "alice", "min_total_samples").await, 0);

    // Without the parameter: alice refuses before she sends anything, and says what is missing.
    cluster.node_mut("carol").kill();
    let bare = Uuid::new_v4();
    let sum = |parameters: Value| ("SecureSum", three, parameters);
    let (status, body) = submit(&bob, sum(Value::Null), bare, json!([4, 5])).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = submit(&alice, sum(Value::Null), bare, json!([1, 2, 3])).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["rule"], "min_total_samples", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("min_total_samples to 6 or more"),
        "{body}"
    );
    let seen = bob.wait_final(bare, WAIT).await.unwrap();
    assert_refused_by_alice(&seen, "min_total_samples", "no parameter, at bob");
    assert_only_aborts_for_carol(&cluster, bare, "no parameter").await;
    assert_eq!(refusals(&cluster, "alice", "min_total_samples").await, 1);
    cluster.node_mut("carol").restart().await;
    let carol = cluster.node("carol").client();
    let (status, body) = submit(&carol, sum(Value::Null), bare, json!(6)).await;
    assert!((200..300).contains(&status), "{body}");
    let seen = carol.wait_final(bare, WAIT).await.unwrap();
    assert_refused_by_alice(&seen, "min_total_samples", "no parameter, at carol");

    // With the parameter, 4 records in all: every party fails with the rule, naming no total.
    let few = Uuid::new_v4();
    let checked = json!({"min_total_samples": 6});
    for (client, input) in [(&alice, json!([1, 2])), (&bob, json!(3)), (&carol, json!(4))] {
        let (status, body) = submit(client, sum(checked.clone()), few, input).await;
        assert!(status == 202 || status == 200, "{body}");
    }
    // alice's refusal of the definition without the parameter is counted already.
    let mut found = 0;
    for party in three {
        let view = cluster.final_at(party, few, WAIT).await;
        assert_eq!(view["status"], "failed", "{party}: {view}");
        assert_eq!(view["error"]["code"], "policy_refused", "{party}: {view}");
        assert_eq!(view["error"]["rule"], "min_total_samples", "{party}: {view}");
        assert_eq!(view["output"], Value::Null, "{party}: {view}");
        let message = view["error"]["message"].as_str().unwrap();
        assert!(!message.contains('4'), "{party} names the total: {message}");
        found += refusals(&cluster, party, "min_total_samples").await;
    }
    // Every party opens the total, but one that hears another's abort first is told and counts
    // no refusal of its own: at least one party counts one.
    assert!((2..=4).contains(&found), "refusals counted: {found}");

    // 6 records in all: the sum runs, and gives what it gives without the check.
    let enough = Uuid::new_v4();
    for (client, input) in [(&alice, json!([1, 2, 3])), (&bob, json!([4, 5])), (&carol, json!(6))] {
        let (status, body) = submit(client, sum(checked.clone()), enough, input).await;
        assert_eq!(status, 202, "{body}");
    }
    for party in three {
        let view = cluster.final_at(party, enough, WAIT).await;
        assert_eq!(view["status"], "succeeded", "{party}: {view}\n{}", cluster.logs());
        assert_eq!(
            view["output"]["result"],
            json!({"sum": 21.0, "samples": 6}),
            "{party}: {view}"
        );
        assert_eq!(view["parameters"]["min_total_samples"], 6, "{party}: {view}");
    }
}
