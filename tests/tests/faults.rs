//! Faults end to end: nodes killed with SIGKILL, the broker killed and restarted, messages forged
//! directly on the broker, and a graceful shutdown.

use fsc_e2e::{Cluster, ClusterOptions, assert_all_summed, random_sums};
use fsc_node::config::roster::{Roster, RosterParty};
use fsc_node::envelope::{Envelopes, Kind};
use fsc_node::keys::NodeKeys;
use fsc_node::store::OutboxRow;
use futures::StreamExt;
use serde_json::json;
use std::time::{Duration, Instant};
use uuid::Uuid;

const FINAL: Duration = Duration::from_secs(90);

/// bob is killed with SIGKILL right after accepting his part of a 200-computation batch, while
/// the others keep sending to him; after a restart, every computation succeeds at every node.
#[tokio::test]
async fn a_node_killed_mid_batch_resumes_and_every_computation_succeeds() {
    let mut cluster = Cluster::start(3).await;
    let (ids, per_node, sums) = random_sums(&cluster, 200, 2);
    cluster.nodes[0].client().submit_batch(&per_node[0]).await.unwrap();
    cluster.nodes[1].client().submit_batch(&per_node[1]).await.unwrap();
    cluster.node_mut("bob").kill();
    cluster.nodes[2].client().submit_batch(&per_node[2]).await.unwrap();
    cluster.node_mut("bob").restart().await;
    assert_all_summed(&cluster, &ids, &sums).await;
}

/// The broker is killed while a batch is in flight and while a node accepts submissions; after
/// its restart, everything that was accepted completes.
#[tokio::test]
async fn a_broker_restart_mid_batch_loses_nothing() {
    let mut cluster = Cluster::start(3).await;
    let (ids, per_node, sums) = random_sums(&cluster, 200, 3);
    cluster.nodes[0].client().submit_batch(&per_node[0]).await.unwrap();
    cluster.nodes[1].client().submit_batch(&per_node[1]).await.unwrap();
    cluster.broker.kill();
    cluster.nodes[2].client().submit_batch(&per_node[2]).await.unwrap();
    cluster.broker.restart().unwrap();
    assert_all_summed(&cluster, &ids, &sums).await;
}

/// Replayed, tampered, misaddressed, moved, unknown-sender and outsider-forged messages published
/// straight on the broker, alone or in bundles, are dropped, counted, and change nothing.
#[tokio::test]
async fn messages_forged_on_the_broker_change_nothing() {
    let cluster = Cluster::start(3).await;
    let admin = cluster.connect_as("admin").await;
    let names = cluster.names();
    let mut copies = admin.subscribe(names.subjects()).await.unwrap();
    admin.flush().await.unwrap();
    let js = async_nats::jetstream::new(admin.clone());

    // alice and bob start; carol holds back, so the computation stays open.
    let id = Uuid::new_v4();
    for (node, input) in cluster.nodes.iter().zip([10, 20]) {
        assert_eq!(
            node.client()
                .submit(&cluster.sum_request(id, json!(input)))
                .await
                .unwrap()
                .status
                .as_u16(),
            202
        );
    }
    let subject = |computation: Uuid, to: &str, from: &str| names.subject(&computation.to_string(), to, from);
    let to_bob = subject(id, "bob", "alice");
    let captured = loop {
        let message = copies.next().await.unwrap();
        if message.subject.as_str() == to_bob {
            break message.payload.to_vec();
        }
    };
    let publish_with = |subject: String, payload: Vec<u8>, bundled: Option<usize>| {
        let js = js.clone();
        async move {
            let mut publish = async_nats::jetstream::message::PublishMessage::build()
                .payload(payload.into())
                .message_id(Uuid::new_v4().to_string());
            if let Some(count) = bundled {
                publish = publish.header(fsc_node::bundle::HEADER, count.to_string().as_str());
            }
            js.send_publish(subject, publish).await.unwrap().await.unwrap();
        }
    };
    let publish = |subject: String, payload: Vec<u8>| publish_with(subject, payload, None);
    // 1. a replay of a real message
    publish(to_bob.clone(), captured.clone()).await;
    // 2. the same message, one bit flipped
    let mut tampered = captured.clone();
    *tampered.last_mut().unwrap() ^= 1;
    publish(to_bob.clone(), tampered).await;
    // 3. delivered to another recipient
    publish(subject(id, "carol", "alice"), captured.clone()).await;
    // 4. moved to another computation
    let other = Uuid::new_v4();
    publish(subject(other, "bob", "alice"), captured.clone()).await;
    // 5. from a sender the roster does not know
    let header = json!({"v": 1, "computation": id, "from": "mallory", "to": "bob", "seq": 0, "kind": "data",
                        "key_id": "k1.k1", "nonce": "AAAAAAAAAAAAAAAA"})
    .to_string();
    let mut unknown = (header.len() as u16).to_be_bytes().to_vec();
    unknown.extend_from_slice(header.as_bytes());
    unknown.extend_from_slice(&[7; 48]);
    publish(subject(id, "bob", "mallory"), unknown).await;
    // 6. an outsider sealing as alice with a key of its own: a share and an abort
    let roster = Roster::load(&cluster.path().join("federation.toml")).unwrap();
    let (fake_keys, _) = NodeKeys::generate().unwrap();
    let mut fake_roster = roster.clone();
    fake_roster.parties[0] = RosterParty::new("alice", &fake_keys, vec![]);
    let mallory = Envelopes::new("alice", fake_keys, &fake_roster).unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
    for (seq, kind) in [(7, Kind::Data), (8, Kind::Abort)] {
        let forged = mallory.seal(id, "bob", seq, kind, &[0; 64], &mut rng).unwrap();
        publish(to_bob.clone(), forged).await;
    }

    // 7. a bundle of a replay and a tampered copy (each message in it is judged alone), and a
    //    bundle whose framing does not hold the count it announces
    let mut tampered = captured.clone();
    *tampered.last_mut().unwrap() ^= 1;
    let rows = [captured.clone(), tampered].map(|envelope| OutboxRow {
        id: 0,
        computation: id.to_string(),
        recipient: "bob".into(),
        seq: 0,
        envelope,
        created_at: 0,
    });
    publish_with(subject(other, "bob", "alice"), fsc_node::bundle::pack(&rows), Some(2)).await;
    publish_with(to_bob.clone(), fsc_node::bundle::pack(&rows), Some(3)).await;

    let bob = cluster.node("bob").client();
    let carol = cluster.node("carol").client();
    for (client, sample, want) in [
        (&bob, "fsc_messages_rejected_total{reason=\"replay\"}", 2.0),
        (&bob, "fsc_messages_rejected_total{reason=\"forged\"}", 4.0),
        (&bob, "fsc_messages_rejected_total{reason=\"malformed\"}", 1.0),
        (&bob, "fsc_messages_rejected_total{reason=\"misrouted\"}", 1.0),
        (&bob, "fsc_messages_rejected_total{reason=\"unknown_sender\"}", 1.0),
        (&carol, "fsc_messages_rejected_total{reason=\"misaddressed\"}", 1.0),
    ] {
        wait_for_metric(client, sample, want).await;
    }
    // Nothing was applied: the computation completes with the true sum, and no other appeared.
    let answer = carol.submit(&cluster.sum_request(id, json!(30))).await.unwrap();
    assert_eq!(answer.status.as_u16(), 202);
    for view in cluster.finals(id, FINAL).await {
        assert_eq!(view["status"], "succeeded", "{view}\n{}", cluster.logs());
        assert_eq!(view["output"]["result"]["sum"], json!(60.0));
    }
    assert!(
        bob.get(other, Duration::ZERO).await.is_err(),
        "no computation was created by the moved message"
    );
}

use rand_core::SeedableRng;

async fn wait_for_metric(client: &fsc_client::Client, sample: &str, want: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let value = client.metric(sample).await.unwrap();
        if value >= want {
            assert_eq!(value, want, "{sample} at {}", client.base());
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{sample} at {} stayed {value}, want {want}",
            client.base()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGTERM drains and exits 0, at once when nothing is left to publish: long before
/// `shutdown_grace_s`, which a drain that never ends runs out. The restarted node still has every
/// result.
#[tokio::test]
async fn sigterm_drains_and_a_restart_keeps_every_result() {
    let mut cluster = Cluster::start_with(ClusterOptions {
        parties: 3,
        env: vec![("FSC_SHUTDOWN_GRACE_S".into(), "30".into())],
        ..Default::default()
    })
    .await;
    let id = cluster.submit_sum(&[json!(1), json!(2), json!(3)]).await;
    cluster.finals(id, FINAL).await;
    let status = cluster
        .node_mut("carol")
        .terminate(Duration::from_secs(10))
        .expect("carol, drained, exits within 10 s, not at shutdown_grace_s (30 s)");
    assert!(
        status.success(),
        "exit status {status}\n{}",
        cluster.node("carol").log()
    );
    cluster.node_mut("carol").restart().await;
    let view = cluster.node("carol").client().get(id, Duration::ZERO).await.unwrap();
    assert_eq!(view["output"]["result"]["sum"], json!(6.0));
}

/// A stored engine state this build cannot read (as one written by another version of the
/// engine would be) fails its computation at the restart, `internal`, and the node starts and
/// serves its other computations: it does not refuse to start over one computation. The peer is
/// told: bob's client, submitting afterwards, finds the computation failed by alice, long before
/// any deadline.
#[tokio::test]
async fn an_unreadable_stored_state_fails_its_computation_not_the_node() {
    let mut cluster = Cluster::start(2).await;
    // alice submits and bob holds back, so the computation stays active with its state stored.
    let id = Uuid::new_v4();
    assert_eq!(cluster.submit_at(0, id, json!(1)).await, 202);
    let store = fsc_node::config::NodeConfig::load(&cluster.path().join("alice/node.toml"), |_| None)
        .expect("alice's node.toml")
        .store;
    cluster.node_mut("alice").kill();
    {
        let conn = rusqlite::Connection::open(&store).unwrap();
        let changed = conn
            .execute(
                "UPDATE computations SET machine = '{\"from\": \"another engine\"}' WHERE id = ?",
                [id.to_string()],
            )
            .unwrap();
        assert_eq!(changed, 1, "alice stored the computation's state");
    }
    cluster.node_mut("alice").restart().await;
    let view = cluster.node("alice").client().wait_final(id, FINAL).await.unwrap();
    assert_eq!(view["status"], "failed", "{view}");
    assert_eq!(view["error"]["code"], "internal", "{view}");
    // Bob has alice's abort already: his client's submission finds the computation failed (200,
    // not 202 for one that starts).
    let told = Instant::now();
    assert_eq!(cluster.submit_at(1, id, json!(2)).await, 200);
    let bob = cluster.node("bob").client().wait_final(id, FINAL).await.unwrap();
    assert_eq!(bob["status"], "failed", "{bob}");
    assert_eq!(bob["error"]["code"], "internal", "{bob}");
    assert_eq!(bob["error"]["party"], "alice", "{bob}");
    assert!(
        told.elapsed() < Duration::from_secs(30),
        "bob waited {:?}",
        told.elapsed()
    );
    let sum = cluster.submit_sum(&[json!(2), json!(3)]).await;
    for view in cluster.finals(sum, FINAL).await {
        assert_eq!(view["output"]["result"]["sum"], json!(5.0), "{view}");
    }
}
