//! A node's disclosure-control policy (`[policy]` in node.toml), end to end: alice's policy
//! refuses a microprotocol, a co-party, too few local records, a client's microprotocol and, as a
//! helper, an inviting party it does not compute with. Each refused computation fails at every
//! party with `policy_refused` and the rule; alice's client alone hears the detail (403); and
//! what alice sent carol for it, as it waits on the broker while carol is away, is aborts only:
//! no message derived from alice's input.

use async_nats::jetstream;
use fsc_e2e::Cluster;
use fsc_node::config::roster::Roster;
use fsc_node::envelope::{Envelopes, Kind};
use fsc_node::keys::NodeKeys;
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
async fn sent_to_carol(cluster: &Cluster, carol: &Envelopes, id: Uuid) -> Vec<Kind> {
    let js = jetstream::new(cluster.admin().await);
    let mut stream = js.get_stream(cluster.names().stream()).await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    let subject = cluster.names().subject(&id.to_string(), "carol", "alice");
    let mut kinds = Vec::new();
    for sequence in state.first_sequence..=state.last_sequence {
        let Ok(message) = stream.get_raw_message(sequence).await else {
            continue;
        };
        if message.subject.as_str() != subject {
            continue;
        }
        let wires: Vec<&[u8]> = match message.headers.get(fsc_node::bundle::HEADER) {
            Some(count) => fsc_node::bundle::unpack(&message.payload, count.as_str()).expect("a well-formed bundle"),
            None => vec![&message.payload[..]],
        };
        for wire in wires {
            let opened = carol.open(&id.to_string(), "alice", wire).expect("sealed for carol");
            kinds.push(opened.header.kind);
        }
    }
    kinds
}

/// Waits until alice's abort for `id` waits for carol; then every message alice sent carol for
/// it must be an abort.
async fn assert_only_aborts_for_carol(cluster: &Cluster, carol: &Envelopes, id: Uuid, what: &str) {
    let started = Instant::now();
    loop {
        let kinds = sent_to_carol(cluster, carol, id).await;
        if kinds.contains(&Kind::Abort) {
            assert!(
                kinds.iter().all(|k| *k == Kind::Abort),
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
    let node_toml = cluster.path().join("alice/node.toml");
    let mut text = std::fs::read_to_string(&node_toml).unwrap();
    text.push_str(POLICY);
    std::fs::write(&node_toml, text).unwrap();
    cluster.node_mut("alice").restart().await;
    // carol is away: what alice sends her stays on the broker, where the test reads it.
    cluster.node_mut("carol").kill();
    let roster = Roster::load(&cluster.path().join("federation.toml")).unwrap();
    let carol_keys = NodeKeys::load(
        &cluster.path().join("carol/x25519.key"),
        &cluster.path().join("carol/ed25519.key"),
    )
    .unwrap();
    let carol_envelopes = Envelopes::new("carol", carol_keys, &roster).unwrap();
    let (alice, bob, dave) = (
        cluster.node("alice").client(),
        cluster.node("bob").client(),
        cluster.node("dave").client(),
    );

    // What the policy allows runs: a sum with bob, two records.
    let id = Uuid::new_v4();
    for (client, input) in [(&bob, json!(5)), (&alice, json!([1, 2]))] {
        let answer = client
            .submit(&request("SecureSum", &["alice", "bob"], Value::Null, id, &input))
            .await
            .unwrap();
        assert_eq!(answer.status, 202, "{}", answer.body);
    }
    let done = alice.wait_final(id, WAIT).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}\n{}", cluster.logs());
    assert_eq!(done["output"]["result"]["sum"], 8.0, "{done}");

    // The control: a sum the policy allows, with carol, who is away. What alice sends her waits
    // on the broker, and the reader below sees it as data.
    let control = Uuid::new_v4();
    let answer = alice
        .submit(&request(
            "SecureSum",
            &["alice", "bob", "carol"],
            Value::Null,
            control,
            &json!([1, 2]),
        ))
        .await
        .unwrap();
    assert_eq!(answer.status, 202, "{}", answer.body);
    let started = Instant::now();
    while !sent_to_carol(&cluster, &carol_envelopes, control)
        .await
        .contains(&Kind::Data)
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
        // bob starts first: alice is invited by his messages, and must not answer with data.
        let answer = bob
            .submit(&request(case.microprotocol, case.parties, Value::Null, id, &case.other))
            .await
            .unwrap();
        assert_eq!(answer.status, 202, "{}: {}", case.rule, answer.body);
        let refused = alice
            .submit(&request(case.microprotocol, case.parties, Value::Null, id, &case.input))
            .await
            .unwrap();
        assert_eq!(refused.status, 403, "{}: {}", case.rule, refused.body);
        assert_eq!(
            refused.body["code"], "policy_refused",
            "{}: {}",
            case.rule, refused.body
        );
        assert_eq!(refused.body["rule"], case.rule, "{}", refused.body);
        // The same request is refused on every try.
        let again = alice
            .submit(&request(case.microprotocol, case.parties, Value::Null, id, &case.input))
            .await
            .unwrap();
        assert_eq!(again.status, 403, "{}: {}", case.rule, again.body);
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
        assert_only_aborts_for_carol(&cluster, &carol_envelopes, id, case.rule).await;
    }
    let detail = alice
        .submit(&request(
            "SecureSum",
            &["alice", "bob"],
            Value::Null,
            Uuid::new_v4(),
            &json!(7),
        ))
        .await
        .unwrap();
    assert!(
        detail.body["detail"].as_str().unwrap_or_default().contains("1 records"),
        "alice's client hears the detail: {}",
        detail.body
    );

    // The federatedsecure API submits into the same admission: the same policy, the same answer.
    let http = reqwest::Client::new();
    let simon: Value = http
        .post(format!("{}/representations", cluster.node("alice").url))
        .json(&json!({"args": [], "kwargs": {"protocol": "Simon"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let compute: Value = http
        .get(format!(
            "{}/representation/{}/compute",
            cluster.node("alice").url,
            simon["uuid"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let nodes = [&cluster.node("alice").url, &cluster.node("bob").url];
    let network = json!({"nodes": nodes, "uuid": Uuid::new_v4().to_string(), "myself": 0});
    let answer = http
        .patch(format!(
            "{}/representation/{}",
            cluster.node("alice").url,
            compute["uuid"].as_str().unwrap()
        ))
        .json(&json!({"args": [], "kwargs": {"microprotocol": "SecureMedian", "data": [1, 2, 3], "network": network}}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);
    let message: Value = answer.json().await.unwrap();
    assert!(
        message
            .as_str()
            .unwrap_or_default()
            .contains("policy rule microprotocols"),
        "{message}"
    );

    // As a helper: bob and dave's product names alice, whose policy does not compute with dave.
    let id = Uuid::new_v4();
    let parameters = json!({"helper": "alice"});
    for (client, input) in [(&bob, json!([[[1, 2], [3, 4]]])), (&dave, json!([[[1, 0], [0, 1]]]))] {
        let answer = client
            .submit(&request(
                "SecureMatrixMultiplication",
                &["bob", "dave"],
                parameters.clone(),
                id,
                &input,
            ))
            .await
            .unwrap();
        assert_eq!(answer.status, 202, "{}", answer.body);
    }
    for party in ["bob", "dave"] {
        let seen = cluster.node(party).client().wait_final(id, WAIT).await.unwrap();
        assert_refused_by_alice(&seen, "parties", &format!("helper, at {party}"));
    }
    let helper = cluster.final_at("alice", id, WAIT).await;
    assert_eq!(helper["error"]["rule"], "parties", "{helper}");

    // carol comes back: her submissions meet alice's aborts, with the rule.
    cluster.node_mut("carol").restart().await;
    let carol = cluster.node("carol").client();
    // The control completes once bob and carol submit.
    for (client, input) in [(&bob, json!(3)), (&carol, json!(4))] {
        let answer = client
            .submit(&request(
                "SecureSum",
                &["alice", "bob", "carol"],
                Value::Null,
                control,
                &input,
            ))
            .await
            .unwrap();
        assert_eq!(answer.status, 202, "{}", answer.body);
    }
    let done = alice.wait_final(control, WAIT).await.unwrap();
    assert_eq!(done["output"]["result"]["sum"], 10.0, "{done}");
    for (case, id) in cases.iter().zip(&ids) {
        let answer = carol
            .submit(&request(
                case.microprotocol,
                case.parties,
                Value::Null,
                *id,
                &case.other,
            ))
            .await
            .unwrap();
        assert!(answer.status.is_success(), "{}: {}", case.rule, answer.body);
        let seen = carol.wait_final(*id, WAIT).await.unwrap();
        assert_refused_by_alice(&seen, case.rule, &format!("{} at carol", case.rule));
    }
}
