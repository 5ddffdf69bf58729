//! What an operator sees of a succeeded and a failed computation: the nodes' log lines (as text,
//! and as JSON with `log_format = "json"`) and their metrics.

use fsc_e2e::{Cluster, ClusterOptions};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn logs_and_metrics_tell_of_a_succeeded_and_a_failed_computation() {
    // At debug, the libraries' internals must still stay out of the log.
    let mut cluster = Cluster::start_with(ClusterOptions {
        parties: 3,
        env: vec![("FSC_LOG".into(), "debug".into())],
        ..Default::default()
    })
    .await;
    let carol = cluster.node_mut("carol");
    carol.set_env("FSC_LOG_FORMAT", "json");
    carol.restart().await;

    let succeeded = cluster.submit_sum(&[json!(19), json!(5), json!(61)]).await;
    for view in cluster.finals(succeeded, Duration::from_secs(30)).await {
        assert_eq!(view["status"], "succeeded", "{view}");
    }
    // Carol's input is invalid: she fails at once and aborts the computation at alice and bob.
    let failed = Uuid::new_v4();
    assert_eq!(cluster.submit_at(0, failed, json!(1)).await, 202);
    assert_eq!(cluster.submit_at(1, failed, json!(2)).await, 202);
    assert_eq!(cluster.submit_at(2, failed, json!("x")).await, 400);
    for view in cluster.finals(failed, Duration::from_secs(30)).await {
        assert_eq!(view["status"], "failed", "{view}");
    }

    let alice = cluster.node("alice").log();
    assert!(!alice.contains('\x1b'), "no colour codes in a log file:\n{alice}");
    let line = |id: Uuid, message: &str| {
        alice
            .lines()
            .find(|l| l.contains(&id.to_string()) && l.contains(message))
            .unwrap_or_else(|| panic!("no {message:?} line for {id} in alice's log:\n{alice}"))
            .to_string()
    };
    let has = |line: String, level: &str, fields: &[&str]| {
        assert!(line.contains(&format!(" {level} ")), "{level} in {line}");
        for field in fields {
            assert!(line.contains(field), "{field} in {line}");
        }
    };
    let common = ["microprotocol=\"SecureSum\"", "parties=alice,bob,carol"];
    for id in [succeeded, failed] {
        has(
            line(id, "computation started"),
            "INFO",
            &[&common[..], &["role=\"party\""]].concat(),
        );
    }
    let ok = [&common[..], &["duration_ms=", "outcome=\"succeeded\""]].concat();
    has(line(succeeded, "computation finished"), "INFO", &ok);
    let bad = [
        &common[..],
        &[
            "duration_ms=",
            "outcome=\"failed\"",
            "reason=\"invalid_input\"",
            "party=\"carol\"",
        ],
    ]
    .concat();
    has(line(failed, "computation finished"), "WARN", &bad);
    assert!(
        !alice.contains("async_nats") && !alice.contains("sqlx::"),
        "library internals in alice's log at debug:\n{alice}"
    );

    // Carol logs JSON: one object per line, fsc's own events only.
    let carol = cluster.node("carol").log();
    let events: Vec<Value> = carol
        .lines()
        .skip_while(|l| !l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?} in carol's log:\n{carol}")))
        .collect();
    for event in &events {
        assert!(event["timestamp"].is_string() && event["level"].is_string(), "{event}");
        let target = event["target"].as_str().unwrap_or_default();
        assert!(target.starts_with("fsc"), "a library's event at debug: {event}");
    }
    let event = |id: Uuid, message: &str| {
        events
            .iter()
            .find(|e| e["computation"] == json!(id.to_string()) && e["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} event for {id} in carol's log:\n{carol}"))
    };
    let ok = event(succeeded, "computation finished");
    assert_eq!(ok["level"], "INFO");
    assert_eq!(ok["microprotocol"], "SecureSum");
    assert_eq!(ok["parties"], "alice,bob,carol");
    assert_eq!(ok["outcome"], "succeeded");
    assert!(ok["duration_ms"].is_u64(), "{ok}");
    assert_eq!(event(failed, "computation started")["level"], "INFO");
    let bad = event(failed, "computation finished");
    assert_eq!(bad["level"], "WARN");
    assert_eq!(bad["outcome"], "failed");
    assert_eq!(bad["reason"], "invalid_input");

    // Metrics, at alice (the failure's reason came from carol).
    let client = cluster.node("alice").client();
    let not_found = reqwest::get(format!("{}/no/such/route", cluster.node("alice").url))
        .await
        .unwrap();
    assert_eq!(not_found.status(), 404);
    let metrics = client.metrics().await.unwrap();
    let sample = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
            .parse::<f64>()
            .unwrap()
    };
    let duration = "fsc_computation_duration_seconds";
    for outcome in ["succeeded", "failed"] {
        let labels = format!("microprotocol=\"SecureSum\",outcome=\"{outcome}\"");
        assert_eq!(sample(&format!("{duration}_count{{{labels}}}")), 1.0);
        assert_eq!(sample(&format!("{duration}_bucket{{{labels},le=\"+Inf\"}}")), 1.0);
        assert!(sample(&format!("{duration}_sum{{{labels}}}")) < 30.0);
    }
    assert_eq!(sample("fsc_computations_failed_total{reason=\"invalid_input\"}"), 1.0);
    assert_eq!(sample("fsc_computations_finished_total{status=\"failed\"}"), 1.0);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(sample(&format!("fsc_build_info{{version=\"{version}\"}}")), 1.0);
    let http = "fsc_http_request_duration_seconds_count";
    assert_eq!(
        sample(&format!(
            "{http}{{method=\"POST\",route=\"/v1/computations\",status=\"202\"}}"
        )),
        2.0
    );
    assert!(
        sample(&format!(
            "{http}{{method=\"GET\",route=\"/v1/computations/{{id}}\",status=\"200\"}}"
        )) >= 2.0
    );
    assert_eq!(
        sample(&format!("{http}{{method=\"GET\",route=\"unmatched\",status=\"404\"}}")),
        1.0
    );
    assert!(
        !metrics.contains(&succeeded.to_string()) && !metrics.contains("/no/such/route"),
        "raw paths in the metrics:\n{metrics}"
    );
    // The Grafana dashboard asks only for metrics that exist.
    let dashboard =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/grafana-dashboard.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&dashboard).unwrap();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for name in expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("fsc_"))
            {
                assert!(
                    metrics.contains(&format!("# TYPE {name} "))
                        || ["_bucket", "_count", "_sum"].iter().any(|s| name
                            .strip_suffix(s)
                            .is_some_and(|base| metrics.contains(&format!("# TYPE {base} histogram")))),
                    "{name} of the dashboard is not served"
                );
                queried += 1;
            }
        }
    }
    assert!(queried >= 10, "{queried}");

    // Carol refused her own submission: a 400 on the route, and a failure there too.
    let carol = cluster.node("carol").client().metrics().await.unwrap();
    assert!(
        carol.contains(
            "fsc_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/computations\",status=\"400\"} 1"
        ),
        "{carol}"
    );
    assert!(
        carol.contains("fsc_computations_failed_total{reason=\"invalid_input\"} 1"),
        "{carol}"
    );

    // An idle node commits nothing: its deadline ticks open no transaction once the broker has
    // stored what it sent (deleting those outbox rows takes one more). Two seconds are four ticks.
    let alice = &cluster.node("alice").client();
    fsc_e2e::eventually(
        Duration::from_secs(10),
        "alice's outbox published",
        move || async move { alice.metric("fsc_outbox_pending").await.unwrap() == 0.0 },
    )
    .await;
    let batches = alice.metric("fsc_store_batches_total").await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = alice.metric("fsc_store_batches_total").await.unwrap() - batches;
    assert!(idle <= 1.0, "{idle} transactions in two idle seconds");
}
