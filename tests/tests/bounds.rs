//! No request, partner or invitation makes a node spend memory or time out of proportion: an
//! output a small request chooses is refused before it is built (`too_large`), a number too long
//! to convert cheaply is refused unread, a helper admits invitations like submissions, what a peer
//! stores here for computations nobody submitted is bounded and expires, and a cancelled
//! computation's work off the runtime's loop stops. Meanwhile a sum among all parties completes
//! within a second.

use fsc_e2e::{Cluster, ClusterOptions, eventually, psi_sets};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use uuid::Uuid;

const FINAL: Duration = Duration::from_secs(60);
/// How long a lone three-party sum may take while an attack runs.
const SUM_WITHIN: Duration = Duration::from_secs(1);

fn request(microprotocol: &str, parties: &[&str], parameters: Value, input: Value, id: Uuid) -> Value {
    json!({"id": id, "microprotocol": microprotocol, "parties": parties, "parameters": parameters, "input": input})
}

/// A sum among every party of the cluster, from the first submission to alice's result.
async fn sum_takes(cluster: &Cluster) -> Duration {
    let started = Instant::now();
    let inputs: Vec<Value> = (1..=cluster.parties.len()).map(|i| json!(i)).collect();
    let id = cluster.submit_sum(&inputs).await;
    let view = cluster.final_at("alice", id, FINAL).await;
    let n = cluster.parties.len() as f64;
    assert_eq!(view["output"]["result"]["sum"], n * (n + 1.0) / 2.0, "{view}");
    started.elapsed()
}

fn assert_quick(took: Duration, during: &str) {
    assert!(took < SUM_WITHIN, "a sum took {took:?} during {during}");
}

/// Outputs beyond `max_output_cells`: a contingency table of exchanged categories (2,000
/// distinct pairs at alice: 2,001 × 2,001 cells), a table of 4,500 × 4,500 categories given as
/// parameters, a 2,000×1 · 1×2,000 product (4·10^6 entries, also at the helper, which agreed to
/// nothing). Each fails with `too_large` everywhere within seconds, and a sum goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_beyond_the_limit_fail_everywhere_before_they_are_built() {
    let cluster = Cluster::start(3).await;
    let (alice, bob, carol) = (
        cluster.node("alice").client(),
        cluster.node("bob").client(),
        cluster.node("carol").client(),
    );
    let three = ["alice", "bob", "carol"];
    let id = Uuid::new_v4();
    let many: Vec<Value> = (0..2000).map(|i| json!([i, i])).collect();
    for (client, input) in [
        (&alice, json!(many)),
        (&bob, json!([["b", "b"]])),
        (&carol, json!([["c", "c"]])),
    ] {
        let answer = client
            .submit(&request("StatisticsContingency", &three, json!({}), input, id))
            .await
            .unwrap();
        assert_eq!(answer.status, 202, "{}", answer.body);
    }
    assert_quick(sum_takes(&cluster).await, "a 4-million-cell table");
    for view in cluster.finals(id, FINAL).await {
        assert_eq!(view["error"]["code"], "too_large", "{view}");
    }

    let categories: Vec<u32> = (0..4500).collect();
    let given = json!({"rows": categories, "columns": categories});
    let refused = alice
        .submit(&request(
            "StatisticsContingency",
            &three,
            given,
            json!([[1, 1]]),
            Uuid::new_v4(),
        ))
        .await
        .unwrap();
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.body["code"], "too_large", "{}", refused.body);

    let id = Uuid::new_v4();
    let column: Vec<Value> = (0..2000).map(|i| json!([i])).collect();
    let row: Vec<u32> = (0..2000).collect();
    let parameters = json!({"allow_revealing_shapes": true});
    for (client, input) in [(&alice, json!(column)), (&bob, json!([row]))] {
        let answer = client
            .submit(&request(
                "SecureMatrixMultiplication",
                &["alice", "bob"],
                parameters.clone(),
                input,
                id,
            ))
            .await
            .unwrap();
        assert_eq!(answer.status, 202, "{}", answer.body);
    }
    assert_quick(sum_takes(&cluster).await, "a 4-million-entry product");
    for party in ["alice", "bob", "carol"] {
        let view = cluster.final_at(party, id, FINAL).await;
        assert_eq!(view["error"]["code"], "too_large", "{party}: {view}");
    }
}

/// A number of four million digits is refused (400) before it is converted, and a sum
/// submitted meanwhile completes; it used to take 16 s of the runtime's loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_too_long_to_convert_cheaply_is_refused_unread() {
    let cluster = Cluster::start(3).await;
    let alice = cluster.node("alice").client();
    let huge: Value = serde_json::from_str(&"7".repeat(4_000_000)).unwrap();
    let id = Uuid::new_v4();
    let submitting = {
        let alice = alice.clone();
        let body = cluster.sum_request(id, huge);
        tokio::spawn(async move { alice.submit(&body).await.unwrap() })
    };
    assert_quick(sum_takes(&cluster).await, "a 4-million-digit input");
    let refused = submitting.await.unwrap();
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body["detail"].as_str().unwrap().contains("at most 400"),
        "{}",
        refused.body
    );
}

/// alice helps dave and carol's products (she is the first roster member that is not a party).
/// She admits invitations like submissions: at most `max_helper_computations` at once, the rest
/// refused with `helper_busy`, which dave's client sees; and none from a party `helper_for`
/// does not list. Her own clients' sums go through meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helper_admits_invitations_like_submissions() {
    let mut cluster = Cluster::start_with(ClusterOptions {
        parties: 4,
        env: vec![("FSC_MAX_HELPER_COMPUTATIONS".into(), "3".into())],
        ..Default::default()
    })
    .await;
    let dave = cluster.node("dave").client();
    let matrix = json!([[1, 2], [3, 4]]);
    let parameters = json!({"allow_revealing_shapes": true});
    let mut ids = Vec::new();
    for _ in 0..8 {
        let id = Uuid::new_v4();
        let answer = dave
            .submit(&request(
                "SecureMatrixMultiplication",
                &["dave", "carol"],
                parameters.clone(),
                matrix.clone(),
                id,
            ))
            .await
            .unwrap();
        assert_eq!(answer.status, 202, "{}", answer.body);
        ids.push(id);
    }
    // carol's client never submits: alice helps 3 of them (they wait for carol), and refuses 5.
    let failed = || async {
        let mut codes = Vec::new();
        for id in &ids {
            let view = dave.get(*id, Duration::ZERO).await.unwrap();
            codes.extend(view["error"]["code"].as_str().map(String::from));
        }
        codes
    };
    eventually(FINAL, "alice refused 5 invitations", || async {
        failed().await.len() >= 5
    })
    .await;
    assert_eq!(failed().await, vec!["helper_busy"; 5]);
    assert_quick(sum_takes(&cluster).await, "a helper flood");

    cluster.node_mut("alice").set_env("FSC_HELPER_FOR", r#"["bob"]"#);
    cluster.node_mut("alice").restart().await;
    let id = Uuid::new_v4();
    dave.submit(&request(
        "SecureMatrixMultiplication",
        &["dave", "carol"],
        parameters,
        matrix,
        id,
    ))
    .await
    .unwrap();
    let refused = dave.wait_final(id, FINAL).await.unwrap();
    assert_eq!(refused["error"]["code"], "helper_refused", "{refused}");
    assert_eq!(refused["error"]["party"], "alice", "{refused}");
}

fn store_bytes(cluster: &Cluster, party: &str) -> u64 {
    ["fsc.sqlite", "fsc.sqlite-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(cluster.path().join(party).join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// dave sends carol, whose clients submit nothing, 20 products of 300×300 matrices (2.9 MB each
/// as masked ring elements): carol keeps at most `max_unsolicited_bytes` of them (the rest is
/// dropped and counted), and drops what she kept after `max_unsolicited_s`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_peer_stores_for_computations_nobody_submitted_is_bounded_and_expires() {
    let cluster = Cluster::start_with(ClusterOptions {
        parties: 4,
        env: vec![
            ("FSC_MAX_UNSOLICITED_BYTES".into(), (8u64 << 20).to_string()),
            ("FSC_MAX_UNSOLICITED_S".into(), "5".into()),
        ],
        ..Default::default()
    })
    .await;
    let (dave, carol) = (cluster.node("dave").client(), cluster.node("carol").client());
    let before = store_bytes(&cluster, "carol");
    let matrix: Vec<Vec<u32>> = (0..300).map(|i| (0..300).map(|j| i * 300 + j).collect()).collect();
    let parameters = json!({"allow_revealing_shapes": true});
    for _ in 0..20 {
        let body = request(
            "SecureMatrixMultiplication",
            &["dave", "carol"],
            parameters.clone(),
            json!(matrix),
            Uuid::new_v4(),
        );
        assert_eq!(dave.submit(&body).await.unwrap().status, 202);
    }
    eventually(FINAL, "carol refused dave's messages beyond her quota", || async {
        carol
            .metric("fsc_messages_rejected_total{reason=\"over_quota\"}")
            .await
            .unwrap_or(0.0)
            > 0.0
    })
    .await;
    assert_quick(sum_takes(&cluster).await, "unsolicited matrices");
    let grown = store_bytes(&cluster, "carol") - before;
    assert!(grown < 24 << 20, "carol's store grew by {grown} bytes for 58 MB sent");
    eventually(FINAL, "carol expired what nobody submitted", || async {
        cluster.node("carol").log().contains("expired messages and chunks")
    })
    .await;
}

/// A cancelled PSI of 2 × 2^17 items stops its curve work within a second at both parties (it
/// used to run to its end, some 20 CPU-seconds a party here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_computation_stops_its_work_off_the_loop() {
    let cluster = Cluster::start(2).await;
    let (alice, bob) = (cluster.node("alice").client(), cluster.node("bob").client());
    let sets = psi_sets(2, 1 << 17, 1 << 16);
    let id = Uuid::new_v4();
    for (client, set) in [(&alice, &sets[0]), (&bob, &sets[1])] {
        let body = request("SetIntersectionSize", &["alice", "bob"], json!({}), set.clone(), id);
        assert_eq!(client.submit(&body).await.unwrap().status, 202);
    }
    let cpu = |party: &str| cpu_seconds(cluster.node(party).pid().expect("running"));
    eventually(FINAL, "both nodes encrypt", || async {
        cpu("alice") > 1.0 && cpu("bob") > 1.0
    })
    .await;
    let view = alice.cancel(id).await.unwrap();
    assert_eq!(view["status"], "failed", "{view}");
    assert_eq!(bob.wait_final(id, FINAL).await.unwrap()["status"], "failed");
    for party in ["alice", "bob"] {
        // Idle within a few seconds: less than a tenth of a CPU-second over one second.
        eventually(
            Duration::from_secs(5),
            &format!("{party} stopped its curve work"),
            || async {
                let before = cpu(party);
                tokio::time::sleep(Duration::from_secs(1)).await;
                cpu(party) - before < 0.1
            },
        )
        .await;
    }
}

/// User plus system CPU time of a process, in seconds (Linux `/proc/<pid>/stat`).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the node's /proc/<pid>/stat");
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')').expect("(comm)").1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}
