//! The privacy budget end to end (README, "Privacy budget"): alice's policy caps what
//! computations with a `dp` parameter may cost, node-wide and for the client `analyst`. Charges
//! accumulate per client and for the node; a computation beyond a cap fails at every party with
//! `policy_refused` and the rule `budget`, and alice sends nothing derived from her input for
//! it; a charge survives kill -9 of alice mid-computation exactly once; `GET /v1/budget`,
//! `fsc budget` and the operator page show it; computations without `dp` cost nothing.
//!
//! The computations with `dp` need an engine that takes the parameter (issue 23, item 2): with
//! one that refuses it as an unknown field, that test says so and checks nothing else.

use fsc_client::Client;
use fsc_e2e::{Cluster, ClusterOptions, clients_env, eventually, fsc_bin, output_text};
use fsc_node::envelope::Kind;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

/// alice's policy: 2 ε in all every 30 days, of which `analyst` may spend 1.
const POLICY: &str = r#"
[policy.budget]
epsilon = 2.0
period_days = 30

[[policy.clients]]
name = "analyst"
budget = { epsilon = 1.0 }
"#;

/// Every node's API clients: an admin, and two that see their own computations only.
fn options(parties: usize) -> ClusterOptions {
    ClusterOptions {
        parties,
        env: vec![clients_env(&[
            ("ops", "token-ops", true),
            ("analyst", "token-analyst", false),
            ("steward", "token-steward", false),
        ])],
        ..Default::default()
    }
}

/// A cluster whose alice runs [`POLICY`].
async fn cluster(parties: usize) -> Cluster {
    let mut cluster = Cluster::start_with(options(parties)).await;
    cluster.append_config("alice", POLICY);
    cluster.node_mut("alice").restart().await;
    cluster
}

fn client_of(cluster: &Cluster, party: &str, name: &str) -> Client {
    Client::new(&cluster.node(party).url, Some(format!("token-{name}")))
}

/// A frequency table's parameters with differential privacy of `epsilon` (its categories given,
/// as `dp` needs).
fn dp(epsilon: f64) -> Value {
    json!({"categories": ["a", "b"], "dp": {"epsilon": epsilon}})
}

/// A frequency table of `parties`, each counting the same three items.
fn table(id: Uuid, parties: &[&str], parameters: Value) -> Value {
    json!({"id": id, "microprotocol": "StatisticsFrequency", "parties": parties,
           "parameters": parameters, "input": ["a", "b", "a"], "deadline_s": 600})
}

/// Runs a frequency table among `parties`, each submitting through its client `name`; its final view at
/// alice.
async fn run(cluster: &Cluster, name: &str, parties: &[&str], parameters: Value) -> Value {
    let id = Uuid::new_v4();
    for party in parties {
        let answer = client_of(cluster, party, name)
            .submit(&table(id, parties, parameters.clone()))
            .await
            .unwrap();
        assert_eq!(answer.status, 202, "{party}: {}", answer.body);
    }
    client_of(cluster, "alice", name).wait_final(id, WAIT).await.unwrap()
}

/// What alice's `GET /v1/budget` tells client `name`.
async fn budget(cluster: &Cluster, name: &str) -> Value {
    client_of(cluster, "alice", name).budget().await.unwrap()
}

/// A client's entry of a budget report.
fn entry<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["clients"]
        .as_array()
        .and_then(|c| c.iter().find(|e| e["name"] == name))
        .unwrap_or_else(|| panic!("no entry for {name}: {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_is_shown_and_computations_without_dp_cost_nothing() {
    let cluster = cluster(2).await;
    let done = run(&cluster, "analyst", &["alice", "bob"], Value::Null).await;
    assert_eq!(done["status"], "succeeded", "{done}\n{}", cluster.logs());

    // The analyst sees its own entry: nothing spent, its cap, and what it may still spend.
    let own = budget(&cluster, "analyst").await;
    assert_eq!(own["period_days"], 30, "{own}");
    assert!(own["since"].is_string(), "{own}");
    assert_eq!(own["node"], Value::Null, "{own}");
    assert_eq!(own["clients"].as_array().unwrap().len(), 1, "{own}");
    let analyst = entry(&own, "analyst");
    assert_eq!(analyst["computations"], 0, "{own}");
    assert_eq!(analyst["spent"], json!({"epsilon": 0.0, "delta": 0.0, "rho": 0.0}));
    assert_eq!(analyst["cap"], json!({"epsilon": 1.0, "delta": null, "rho": null}));
    assert_eq!(analyst["remaining"]["epsilon"], 1.0, "{own}");
    // The steward has no cap of its own: what it may spend is the node's.
    let steward = budget(&cluster, "steward").await;
    assert_eq!(entry(&steward, "steward")["remaining"]["epsilon"], 2.0, "{steward}");
    // The admin sees the node's total and every client the policy caps.
    let all = budget(&cluster, "ops").await;
    assert_eq!(all["node"]["cap"]["epsilon"], 2.0, "{all}");
    assert_eq!(all["node"]["computations"], 0, "{all}");
    entry(&all, "analyst");

    // `fsc budget` prints it as a table.
    let output = tokio::task::spawn_blocking({
        let url = cluster.node("alice").url.clone();
        move || {
            std::process::Command::new(fsc_bin())
                .args(["budget", "--node", &url, "--token", "token-ops"])
                .output()
                .expect("run fsc budget")
        }
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", output_text(&output));
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.starts_with("privacy budget spent in the last 30 days"), "{table}");
    let line = |name: &str| table.lines().find(|l| l.starts_with(name)).unwrap_or_default();
    assert!(line("(node)").contains("0 / 2 (2 left)"), "{table}");
    assert!(line("analyst").contains("0 / 1 (1 left)"), "{table}");

    // The operator page shows the caps too.
    let url = format!("{}/", cluster.node("alice").url);
    let answer = reqwest::Client::new().get(url).bearer_auth("token-ops").send().await;
    let page = answer.unwrap().text().await.unwrap();
    assert!(
        page.contains("Privacy budget") && page.contains("0 of 1 (1 left)"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charges_add_up_a_spent_budget_refuses_everywhere_and_a_crash_charges_once() {
    let mut cluster = cluster(3).await;
    // carol is away for the refusals: what alice sends her stays on the broker, where the test
    // reads it.
    cluster.node_mut("carol").kill();
    let pair = ["alice", "bob"];

    // The analyst spends 0.4 twice: 0.8 of its 1.
    for _ in 0..2 {
        let done = run(&cluster, "analyst", &pair, dp(0.4)).await;
        assert_eq!(done["status"], "succeeded", "{done}\n{}", cluster.logs());
    }
    let analyst = entry(&budget(&cluster, "analyst").await, "analyst").clone();
    assert_eq!(analyst["computations"], 2, "{analyst}");
    assert!(
        (analyst["spent"]["epsilon"].as_f64().unwrap() - 0.8).abs() < 1e-12,
        "{analyst}"
    );
    // A third would pass its cap: refused at alice, and every party fails.
    let refused = Uuid::new_v4();
    assert_refused_everywhere(&cluster, "analyst", refused, dp(0.4)).await;
    // A computation without dp still runs.
    let done = run(&cluster, "analyst", &pair, Value::Null).await;
    assert_eq!(done["status"], "succeeded", "{done}");

    // The steward has no cap of its own; the node's 2 stop it at 1.2 more.
    let done = run(&cluster, "steward", &pair, dp(1.0)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_refused_everywhere(&cluster, "steward", Uuid::new_v4(), dp(0.4)).await;
    let all = budget(&cluster, "ops").await;
    assert_eq!(all["node"]["computations"], 3, "{all}");
    assert!(
        (all["node"]["spent"]["epsilon"].as_f64().unwrap() - 1.8).abs() < 1e-12,
        "{all}"
    );
    assert!(
        (all["node"]["remaining"]["epsilon"].as_f64().unwrap() - 0.2).abs() < 1e-12,
        "{all}"
    );
    assert_eq!(entry(&all, "steward")["computations"], 1, "{all}");

    // kill -9 mid-computation: alice has started a sum of 0.1 (bob has not submitted yet) and
    // crashes. The charge was committed with the start: after the restart it is there, once,
    // and neither the re-submission nor the recovered computation charges again.
    let crashed = Uuid::new_v4();
    let request = table(crashed, &pair, dp(0.1));
    let answer = client_of(&cluster, "alice", "analyst").submit(&request).await.unwrap();
    assert_eq!(answer.status, 202, "{}", answer.body);
    cluster.node_mut("alice").kill();
    cluster.node_mut("alice").restart().await;
    let after = entry(&budget(&cluster, "analyst").await, "analyst").clone();
    assert_eq!(after["computations"], 3, "{after}");
    let answer = client_of(&cluster, "alice", "analyst").submit(&request).await.unwrap();
    assert_eq!(answer.status, 200, "an idempotent retry: {}", answer.body);
    let answer = client_of(&cluster, "bob", "analyst").submit(&request).await.unwrap();
    assert_eq!(answer.status, 202, "{}", answer.body);
    let done = client_of(&cluster, "alice", "analyst")
        .wait_final(crashed, WAIT)
        .await
        .unwrap();
    assert_eq!(done["status"], "succeeded", "{done}\n{}", cluster.logs());
    let analyst = entry(&budget(&cluster, "analyst").await, "analyst").clone();
    assert_eq!(analyst["computations"], 3, "{analyst}");
    assert!(
        (analyst["spent"]["epsilon"].as_f64().unwrap() - 0.9).abs() < 1e-12,
        "{analyst}"
    );
    // bob's node has no budget, but keeps a ledger all the same: its analyst paid once each.
    let at_bob = Client::new(&cluster.node("bob").url, Some("token-analyst".into()))
        .budget()
        .await
        .unwrap();
    assert_eq!(entry(&at_bob, "analyst")["computations"], 4, "{at_bob}");
}

/// `name`'s sum `id` among alice, bob and carol (away): bob submits first, then alice's client
/// is refused with the rule `budget` (on every try), bob's computation fails naming alice and
/// the rule, and what alice sent carol for it is an abort only.
async fn assert_refused_everywhere(cluster: &Cluster, name: &str, id: Uuid, parameters: Value) {
    let parties = ["alice", "bob", "carol"];
    let request = table(id, &parties, parameters);
    let answer = client_of(cluster, "bob", name).submit(&request).await.unwrap();
    assert_eq!(answer.status, 202, "{}", answer.body);
    for _ in 0..2 {
        let answer = client_of(cluster, "alice", name).submit(&request).await.unwrap();
        assert_eq!(answer.status, 403, "{}", answer.body);
        assert_eq!(answer.body["code"], "policy_refused", "{}", answer.body);
        assert_eq!(answer.body["rule"], "budget", "{}", answer.body);
    }
    let own = client_of(cluster, "alice", name).wait_final(id, WAIT).await.unwrap();
    assert_eq!(own["error"]["rule"], "budget", "{own}");
    let seen = client_of(cluster, "bob", name).wait_final(id, WAIT).await.unwrap();
    assert_eq!(seen["status"], "failed", "{seen}");
    assert_eq!(seen["error"]["code"], "policy_refused", "{seen}");
    assert_eq!(seen["error"]["party"], "alice", "{seen}");
    assert_eq!(seen["error"]["rule"], "budget", "{seen}");
    assert!(!seen.to_string().contains("left of"), "a peer sees the detail: {seen}");
    // Once alice's abort waits for carol, everything alice sent carol for it must be an abort,
    // or the receipt of her failure (signed digests of the definition and the reason code).
    let kinds = || async {
        let opened = cluster.waiting_on_broker(id, "carol", "alice").await;
        opened.into_iter().map(|o| o.header.kind).collect::<Vec<Kind>>()
    };
    eventually(WAIT, "alice's abort for carol", || async {
        kinds().await.contains(&Kind::Abort)
    })
    .await;
    let sent = kinds().await;
    assert!(
        sent.iter().all(|k| matches!(k, Kind::Abort | Kind::Receipt)),
        "alice sent carol {sent:?}"
    );
}

/// Concurrent submissions cannot together pass a cap: the check and the charge are one write
/// transaction. Eight requests of 0.5 each race for the node's 2: four start, four are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submissions_cannot_overspend() {
    let cluster = cluster(2).await;
    let steward = client_of(&cluster, "alice", "steward");
    let submissions = (0..8).map(|_| {
        let request = table(Uuid::new_v4(), &["alice", "bob"], dp(0.5));
        let steward = steward.clone();
        tokio::spawn(async move { steward.submit(&request).await.unwrap() })
    });
    let mut statuses = Vec::new();
    for answer in futures::future::join_all(submissions).await {
        let answer = answer.unwrap();
        if answer.status == 403 {
            assert_eq!(answer.body["rule"], "budget", "{}", answer.body);
        }
        statuses.push(answer.status.as_u16());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [202, 202, 202, 202, 403, 403, 403, 403], "{statuses:?}");
    let all = budget(&cluster, "ops").await;
    assert_eq!(all["node"]["computations"], 4, "{all}");
    assert_eq!(all["node"]["spent"]["epsilon"], 2.0, "{all}");
    assert_eq!(all["node"]["remaining"]["epsilon"], 0.0, "{all}");
}
