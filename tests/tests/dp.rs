//! Differentially private tables end to end (issue 23, item 2): three real nodes over a real
//! broker run 200 contingency tables with `dp` (ρ-zCDP, the discrete Gaussian); every party adds
//! its noise share inside the masked sum, and the opened counts carry noise of the documented
//! scale (mean 0, variance 3σ² with σ² = 1/(2ρ) per party). alice's policy sets
//! `min_cell_count`: her outputs suppress the noisy cells below it, where bob's (no such rule)
//! show them. alice's `require_dp` refuses the same table without `dp`, and every party names the
//! rule. A noisy SecureSum through two nodes names its mechanisms and lands near the truth; so
//! does a noisy StatisticsUnivariate, whose output holds only the noisy fields.

use fsc_e2e::Cluster;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(120);
const RUNS: usize = 200;

const POLICY: &str = r#"
[policy]
require_dp = ["StatisticsContingency"]
max_rho = 1.0
min_cell_count = 3
"#;

const PARTIES: [&str; 3] = ["alice", "bob", "carol"];

fn request(id: Uuid, parameters: &Value, input: &Value) -> Value {
    json!({"id": id, "microprotocol": "StatisticsContingency", "parties": PARTIES,
           "parameters": parameters, "input": input, "deadline_s": 600})
}

/// Each party's pairs: the table's true counts are a/0: 3, a/1: 1, b/0: 1, b/1: 2.
fn inputs() -> [Value; 3] {
    [
        json!([["a", 0], ["a", 0], ["b", 1]]),
        json!([["a", 0], ["b", 0]]),
        json!([["b", 1], ["a", 1]]),
    ]
}

const TRUTH: [(&str, &str, i64); 4] = [("a", "0", 3), ("a", "1", 1), ("b", "0", 1), ("b", "1", 2)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noisy_tables_have_the_documented_scale_suppress_small_cells_and_require_dp_refuses() {
    let mut cluster = Cluster::start(3).await;
    cluster.append_config("alice", POLICY);
    cluster.node_mut("alice").restart().await;
    let clients: Vec<_> = PARTIES.iter().map(|p| cluster.node(p).client()).collect();

    // ρ = 1/8: σ² = 4 per party, 12 in the opened total.
    let parameters = json!({"rows": ["a", "b"], "columns": [0, 1], "dp": {"rho": 0.125}});
    let ids: Vec<Uuid> = (0..RUNS).map(|_| Uuid::new_v4()).collect();
    for (client, input) in clients.iter().zip(inputs()) {
        let batch: Vec<Value> = ids.iter().map(|id| request(*id, &parameters, &input)).collect();
        let answers = client.submit_all(&batch).await.unwrap();
        assert!(answers.iter().all(|a| a["status"].is_string()), "{answers:?}");
    }
    let mut errors = Vec::new();
    let mut suppressed = 0;
    for id in &ids {
        let at_bob = clients[1].wait_final(*id, WAIT).await.unwrap();
        assert_eq!(at_bob["status"], "succeeded", "{at_bob}\n{}", cluster.logs());
        let result = &at_bob["output"]["result"];
        assert_eq!(result["dp"]["mechanism"], "discrete_gaussian", "{result}");
        assert_eq!(result["dp"]["rho"], 0.125);
        assert_eq!(result["dp"]["per_party_sigma"], 2.0);
        assert_eq!(result["dp"]["collusion"], 2);
        assert_eq!(result["suppressed"], json!([]), "bob suppresses nothing: {result}");
        let at_alice = clients[0].wait_final(*id, WAIT).await.unwrap();
        let mine = &at_alice["output"]["result"];
        for (row, column, truth) in TRUTH {
            let noisy = result["table"][row][column].as_i64().unwrap();
            errors.push((noisy - truth) as f64);
            // alice sees the same noisy count, or null where it is below her min_cell_count.
            if noisy < 3 {
                assert_eq!(mine["table"][row][column], Value::Null, "{mine}");
                suppressed += 1;
            } else {
                assert_eq!(mine["table"][row][column], noisy, "{mine}");
            }
        }
        let listed = mine["suppressed"].as_array().unwrap().len();
        assert_eq!(
            listed,
            TRUTH
                .iter()
                .filter(|(r, c, _)| result["table"][r][c].as_i64().unwrap() < 3)
                .count()
        );
    }
    let n = errors.len() as f64;
    let mean = errors.iter().sum::<f64>() / n;
    let variance = errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1.0);
    // 800 cells of variance 12: the mean's standard error is 0.12, the variance's about 5%.
    assert!(mean.abs() < 0.6, "mean noise {mean}");
    assert!(
        (variance / 12.0 - 1.0).abs() < 0.25,
        "noise variance {variance}, documented 3 · 4 = 12"
    );
    assert!(suppressed > 0, "no noisy cell fell below 3 in {RUNS} runs");
    println!(
        "dp e2e: {RUNS} tables, noise mean {mean:.3}, variance {variance:.2} (documented 12), {suppressed} cells suppressed at alice"
    );

    // The same table without dp: alice's require_dp refuses it, and every party names the rule.
    let id = Uuid::new_v4();
    let plain = json!({"rows": ["a", "b"], "columns": [0, 1]});
    // bob and carol first: alice is invited by their messages, and refuses when her client comes.
    for (index, (client, input)) in clients.iter().zip(inputs()).enumerate().rev() {
        let answer = client.submit(&request(id, &plain, &input)).await.unwrap();
        let status = answer.status.as_u16();
        if index == 0 {
            assert_eq!(status, 403, "{}", answer.body);
            assert_eq!(answer.body["rule"], "require_dp", "{}", answer.body);
        } else {
            assert!(status == 202 || status == 200, "{}", answer.body);
        }
    }
    for (party, client) in PARTIES.iter().zip(&clients) {
        let view = client.wait_final(id, WAIT).await.unwrap();
        assert_eq!(view["status"], "failed", "{party}: {view}");
        assert_eq!(view["error"]["code"], "policy_refused", "{party}: {view}");
        assert_eq!(view["error"]["rule"], "require_dp", "{party}: {view}");
    }

    // Beyond alice's max_rho: refused by that rule.
    let id = Uuid::new_v4();
    let greedy = json!({"rows": ["a", "b"], "columns": [0, 1], "dp": {"rho": 2.0}});
    let answer = clients[0].submit(&request(id, &greedy, &inputs()[0])).await.unwrap();
    assert_eq!(answer.status.as_u16(), 403, "{}", answer.body);
    assert_eq!(answer.body["rule"], "max_rho", "{}", answer.body);
    // A malformed dp is a 400 that says why.
    let bad = json!({"rows": ["a"], "columns": [0], "dp": {"epsilon": 1.0, "rho": 1.0}});
    let answer = clients[1]
        .submit(&request(Uuid::new_v4(), &bad, &json!([])))
        .await
        .unwrap();
    assert_eq!(answer.status.as_u16(), 400, "{}", answer.body);
    assert!(answer.body.to_string().contains("not both"), "{}", answer.body);
}

/// Two parties' inputs for the noisy sums: with bounds [0, 10], 25.0 clips to 10.
fn two_inputs() -> [Value; 2] {
    [json!([3.0, 25.0]), json!([4.5, 7])]
}

/// Runs `microprotocol` with `parameters` at alice and bob (inputs [`two_inputs`]) and returns
/// the result, which both must open alike.
async fn run_at_both(cluster: &Cluster, microprotocol: &str, parameters: &Value) -> Value {
    let parties = ["alice", "bob"];
    let clients: Vec<_> = parties.iter().map(|p| cluster.node(p).client()).collect();
    let id = Uuid::new_v4();
    for (client, input) in clients.iter().zip(two_inputs()) {
        let request = json!({"id": id, "microprotocol": microprotocol, "parties": parties,
                             "parameters": parameters, "input": input, "deadline_s": 600});
        let answer = client.submit(&request).await.unwrap();
        assert!(answer.status.is_success(), "{}", answer.body);
    }
    let mut results = Vec::new();
    for client in &clients {
        let view = client.wait_final(id, WAIT).await.unwrap();
        assert_eq!(view["status"], "succeeded", "{view}\n{}", cluster.logs());
        results.push(view["output"]["result"].clone());
    }
    assert_eq!(results[0], results[1]);
    results.swap_remove(0)
}

/// A noisy SecureSum through two real nodes: values clipped to `dp.bounds` on the grid 0.01, the
/// output names both mechanisms (sum and count, half the budget each) and every party opens the
/// same noisy total, within a generous bound of the true clipped sum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_secure_sum_names_its_mechanism_and_is_near_the_truth() {
    let cluster = Cluster::start(2).await;
    // bounds [0, 10] on the grid 0.01: Δ = 1000 units; ε = 2 split evenly: scale 1000 units
    // (10.0) per party for the sum, 1 for the count.
    let parameters = json!({"digits_after": 2, "dp": {"epsilon": 2.0, "bounds": [0, 10]}});
    // 25.0 clips to 10: the clipped truth is 3 + 10 + 4.5 + 7 = 24.5 from 4 records.
    let result = &run_at_both(&cluster, "SecureSum", &parameters).await;
    assert_eq!(result["dp"]["sum"]["mechanism"], "discrete_laplace", "{result}");
    assert_eq!(result["dp"]["sum"]["sensitivity"]["l1"], 1000);
    assert_eq!(result["dp"]["sum"]["per_party_scale"], 1000.0);
    assert_eq!(result["dp"]["sum"]["budget_share"], 0.5);
    assert_eq!(result["dp"]["samples"]["mechanism"], "discrete_laplace");
    assert_eq!(result["dp"]["bounds"], json!([0.0, 10.0]));
    // Two shares of scale 10.0 (value units): |noise| beyond 200 has probability about 2e-8.
    let sum = result["sum"].as_f64().unwrap();
    assert!((sum - 24.5).abs() < 200.0, "{result}");
    assert!((result["samples"].as_i64().unwrap() - 4).abs() < 40, "{result}");
}

/// StatisticsUnivariate with `dp` through two real nodes: bob's policy requires it (the same
/// request without `dp` is refused by that rule), the noisy output has only the count, sum, mean,
/// variance and standard deviation, names the three mechanisms (a third of the budget each) and
/// lands within a generous bound of the clipped truth. StatisticsContingencyVertical refuses `dp`
/// with a 400 that says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noisy_univariate_statistics_open_only_noisy_fields() {
    let mut cluster = Cluster::start(2).await;
    cluster.append_config("bob", "[policy]\nrequire_dp = [\"StatisticsUnivariate\"]\n");
    cluster.node_mut("bob").restart().await;
    let parties = ["alice", "bob"];
    let bob = cluster.node("bob").client();
    // Without dp: bob's require_dp refuses it.
    let plain = json!({"id": Uuid::new_v4(), "microprotocol": "StatisticsUnivariate",
                       "parties": parties, "parameters": {}, "input": [4.5, 7], "deadline_s": 600});
    let answer = bob.submit(&plain).await.unwrap();
    assert_eq!(answer.status.as_u16(), 403, "{}", answer.body);
    assert_eq!(answer.body["rule"], "require_dp", "{}", answer.body);

    // bounds [0, 10] on the grid 0.01: Δ = 1000 units for the sum, 10000 for the squares; ε = 30
    // split in three: per-party scales 100 units (1.0) for the sum, 0.1 for the count, 1000
    // units (10.0) for the squares. The clipped values are 3, 10, 4.5, 7 (sum 24.5).
    let parameters = json!({"digits_after": 2, "dp": {"epsilon": 30.0, "bounds": [0, 10]}});
    let result = &run_at_both(&cluster, "StatisticsUnivariate", &parameters).await;
    let mut keys: Vec<&str> = result.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["dp", "mean", "samples", "standard_deviation", "sum", "variance"],
        "{result}"
    );
    for (slot, sensitivity) in [("sum", 1000), ("samples", 1), ("sum_of_squares", 10000)] {
        assert_eq!(result["dp"][slot]["mechanism"], "discrete_laplace", "{result}");
        assert_eq!(result["dp"][slot]["sensitivity"]["l1"], sensitivity, "{result}");
    }
    assert_eq!(result["dp"]["sum"]["per_party_scale"], 100.0);
    assert_eq!(result["dp"]["bounds"], json!([0.0, 10.0]));
    // Two shares of scale 1.0 on the sum: |noise| beyond 40 has probability about 1e-15; the
    // count's shares of scale 0.1 are almost always 0.
    assert!((result["sum"].as_f64().unwrap() - 24.5).abs() < 40.0, "{result}");
    assert!((result["samples"].as_i64().unwrap() - 4).abs() < 5, "{result}");
    let mean = result["mean"].as_f64();
    assert!(mean.is_none_or(|m| (0.0..=10.0).contains(&m)), "{result}");

    let answer = bob
        .submit(
            &json!({"id": Uuid::new_v4(), "microprotocol": "StatisticsContingencyVertical",
                        "parties": parties, "parameters": {"dp": {"epsilon": 1.0}},
                        "input": [["id", "x"]], "deadline_s": 600}),
        )
        .await
        .unwrap();
    assert_eq!(answer.status.as_u16(), 400, "{}", answer.body);
    assert!(answer.body.to_string().contains("does not take dp"), "{}", answer.body);
}
