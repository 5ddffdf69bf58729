//! Chunks of large messages published straight on the broker: authenticated before they are
//! stored, bounded per sender, expired, and not kept once their computation has ended.

use async_nats::HeaderMap;
use fsc_client::Client;
use fsc_e2e::{Cluster, ClusterOptions, eventually, psi_sets};
use fsc_node::config::roster::Roster;
use fsc_node::envelope::{ChunkId, Envelopes};
use fsc_node::keys::NodeKeys;
use futures::StreamExt;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

const CHUNK: usize = 900_000;

/// bob's broker connection, as its NKey user (which may publish only as bob).
async fn connect_as_bob(cluster: &Cluster) -> async_nats::jetstream::Context {
    async_nats::jetstream::new(cluster.connect_as("bob").await)
}

/// Publishes one chunk as bob and waits until the stream has stored it.
async fn publish(
    cluster: &Cluster,
    bob: &async_nats::jetstream::Context,
    computation: Uuid,
    headers: HeaderMap,
    data: Vec<u8>,
) {
    let subject = cluster.names().subject(&computation.to_string(), "alice", "bob");
    bob.publish_with_headers(subject, headers, data.into())
        .await
        .unwrap()
        .await
        .unwrap();
}

fn chunk_headers(id: &ChunkId, tag: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("Fsc-Chunk", format!("{}/{}", id.idx, id.total).as_str());
    headers.insert("Fsc-Seq", id.seq.to_string().as_str());
    if let Some(tag) = tag {
        headers.insert("Fsc-Chunk-Tag", tag);
    }
    headers
}

async fn metric(client: &Client, sample: &str) -> f64 {
    client.metric(sample).await.unwrap()
}

fn store_bytes(cluster: &Cluster, party: &str) -> u64 {
    ["fsc.sqlite", "fsc.sqlite-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(cluster.path().join(party).join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// With bob's broker login alone (no keys), 100 chunks of 900 kB for alice never reach her store:
/// each is rejected and counted before anything is written. (They used to fill it: 52 kB → 96 MB
/// plus 97 MB of WAL, kept for an hour.)
#[tokio::test]
async fn chunks_without_the_senders_keys_are_never_stored() {
    let cluster = Cluster::start(2).await;
    let before = store_bytes(&cluster, "alice");
    let bob = connect_as_bob(&cluster).await;
    let computation = Uuid::new_v4();
    for idx in 0..100u32 {
        let id = ChunkId {
            seq: 0,
            idx,
            total: 200,
        };
        // Half without a tag, half with a made-up one.
        let tag = (idx % 2 == 1).then_some("k1.k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        publish(&cluster, &bob, computation, chunk_headers(&id, tag), vec![7u8; CHUNK]).await;
    }
    let alice = cluster.nodes[0].client();
    eventually(Duration::from_secs(60), "alice rejects 100 forged chunks", || async {
        metric(&alice, "fsc_messages_rejected_total{reason=\"forged\"}").await == 100.0
    })
    .await;
    assert_eq!(metric(&alice, "fsc_chunks_pending_bytes").await, 0.0);
    let after = store_bytes(&cluster, "alice");
    assert!(
        after < before + 2_000_000,
        "alice's store grew from {before} to {after} bytes"
    );
}

/// bob's own chunks (valid tags, a message that never completes) are stored up to alice's
/// max_pending_chunk_bytes and dropped beyond it (counted as over_quota); what waits is expired
/// after the longest deadline.
#[tokio::test]
async fn an_authenticated_senders_pending_chunks_are_bounded_and_expire() {
    let cluster = Cluster::start_with(ClusterOptions {
        parties: 2,
        env: vec![
            ("FSC_MAX_PENDING_CHUNK_BYTES".into(), "3000000".into()),
            ("FSC_MAX_DEADLINE_S".into(), "4".into()),
            ("FSC_DEFAULT_DEADLINE_S".into(), "2".into()),
        ],
        ..Default::default()
    })
    .await;
    let dir = cluster.path();
    let keys = NodeKeys::load(&dir.join("bob/x25519.key"), &dir.join("bob/ed25519.key")).unwrap();
    let roster = Roster::load(&dir.join("federation.toml")).unwrap();
    let envelopes = Envelopes::new("bob", keys, &roster).unwrap();
    let bob = connect_as_bob(&cluster).await;
    let computation = Uuid::new_v4();
    for idx in 0..6u32 {
        let id = ChunkId {
            seq: 0,
            idx,
            total: 100,
        };
        let data = vec![idx as u8; CHUNK];
        let tag = envelopes.chunk_tag(computation, "alice", &id, &data).unwrap();
        publish(&cluster, &bob, computation, chunk_headers(&id, Some(&tag)), data).await;
    }
    let alice = cluster.nodes[0].client();
    eventually(
        Duration::from_secs(30),
        "3 chunks over the quota are dropped",
        || async { metric(&alice, "fsc_messages_rejected_total{reason=\"over_quota\"}").await == 3.0 },
    )
    .await;
    assert_eq!(
        metric(&alice, "fsc_messages_rejected_total{reason=\"forged\"}").await,
        0.0
    );
    eventually(Duration::from_secs(10), "3 chunks within the quota wait", || async {
        metric(&alice, "fsc_chunks_pending_bytes").await == (3 * CHUNK) as f64
    })
    .await;
    eventually(Duration::from_secs(20), "the waiting chunks expire", || async {
        metric(&alice, "fsc_chunks_pending_bytes").await == 0.0
    })
    .await;
}

/// A chunked message's chunks that come again after their computation succeeded (redelivered by
/// the broker, or sent late) are dropped at once, counted as late, not kept until the sweep of
/// messages for computations never submitted (`max_deadline_s`, an hour by default).
#[tokio::test]
async fn chunks_of_a_computation_that_ended_are_not_kept() {
    let cluster = Cluster::start_with(ClusterOptions {
        parties: 2,
        env: vec![("FSC_MAX_CHUNK_BYTES".into(), "8192".into())],
        ..Default::default()
    })
    .await;
    // The operator's view of every message bob sends alice, headers included.
    let admin = cluster.admin().await;
    let mut sent = admin.subscribe("fsc.*.alice.bob").await.unwrap();
    admin.flush().await.unwrap();

    // A set intersection of 2,000 items a party by the DH ring (between two parties the OT PSI
    // is the default, whose first message from bob is three chunks): its lists of 64 kB travel
    // in 8 chunks or more.
    let id = Uuid::new_v4();
    for (node, input) in cluster.nodes.iter().zip(psi_sets(2, 2000, 10)) {
        let request = json!({
            "id": id, "microprotocol": "SetIntersection", "parties": cluster.parties,
            "parameters": {"psi": "dh"}, "input": input,
        });
        let answer = node.client().submit(&request).await.unwrap();
        assert_eq!(answer.status, 202, "{}", answer.body);
    }
    for view in cluster.finals(id, Duration::from_secs(60)).await {
        assert_eq!(view["status"], "succeeded", "{view}\n{}", cluster.logs());
    }

    // The chunks of one of bob's messages to alice, as they went through the broker.
    let mut by_seq: HashMap<String, Vec<async_nats::Message>> = HashMap::new();
    let chunks = loop {
        let message = tokio::time::timeout(Duration::from_secs(10), sent.next())
            .await
            .expect("bob's chunks were seen")
            .unwrap();
        let header = |name: &str| Some(message.headers.as_ref()?.get(name)?.as_str().to_string());
        let (Some(chunk), Some(seq)) = (header("Fsc-Chunk"), header("Fsc-Seq")) else {
            continue;
        };
        let total: usize = chunk.split_once('/').unwrap().1.parse().unwrap();
        let chunks = by_seq.entry(seq).or_default();
        chunks.push(message);
        if chunks.len() == total {
            break std::mem::take(chunks);
        }
    };
    assert!(chunks.len() >= 4, "a message of {} chunks", chunks.len());

    // All but one come again: a message that can never complete.
    let alice = cluster.nodes[0].client();
    let late_before = metric(&alice, "fsc_messages_late_total").await;
    let bob = connect_as_bob(&cluster).await;
    let again = &chunks[..chunks.len() - 1];
    for message in again {
        let old = message.headers.as_ref().unwrap();
        let mut headers = HeaderMap::new();
        for name in ["Fsc-Chunk", "Fsc-Seq", "Fsc-Chunk-Tag"] {
            headers.insert(name, old.get(name).unwrap().as_str());
        }
        bob.publish_with_headers(message.subject.to_string(), headers, message.payload.clone())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    eventually(Duration::from_secs(30), "alice drops the late chunks", || async {
        metric(&alice, "fsc_messages_late_total").await >= late_before + again.len() as f64
    })
    .await;
    assert_eq!(metric(&alice, "fsc_chunks_pending_bytes").await, 0.0);
}
