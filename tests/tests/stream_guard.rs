//! The streams no party can subvert (one per party's inbox, `FSC-<party>`): the operator
//! provisions them (`fsc federation provision`, idempotent), nodes wait for them and refuse one
//! that differs from the roster's `[stream]`, and a party's broker user can neither create or
//! change streams, nor read which pairs of parties have messages pending, nor park messages for
//! anyone outside the roster.

use async_nats::jetstream::{self, stream};
use fsc_e2e::{Cluster, ClusterOptions, NodeProcess, eventually, output_text};
use fsc_node::config::roster::Roster;
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// Where a republish rule on alice's stream (`fsc.*.alice.*`) copies a message: its subject.
const COPY: &str = "fsc.{{wildcard(1)}}.alice.{{wildcard(2)}}";
const WAITING: &str = "waiting for the operator to provision stream FSC (fsc federation provision)";

fn unprovisioned(parties: usize) -> ClusterOptions {
    ClusterOptions {
        parties,
        unprovisioned: true,
        ..Default::default()
    }
}

fn roster(cluster: &Cluster) -> Roster {
    Roster::load(&cluster.path().join("federation.toml")).unwrap()
}

/// `STREAM.INFO` of carol's stream with every subject's message count, as the admin user may ask.
async fn subject_counts(cluster: &Cluster) -> Value {
    let admin = cluster.connect_as("admin").await;
    let answer = admin
        .request(
            format!("$JS.API.STREAM.INFO.{}", cluster.names().inbox_stream("carol")),
            json!({"subjects_filter": cluster.names().subjects()})
                .to_string()
                .into(),
        )
        .await
        .unwrap();
    serde_json::from_slice(&answer.payload).unwrap()
}

#[tokio::test]
async fn nodes_wait_for_the_operator_then_compute_and_provisioning_is_idempotent() {
    let mut cluster = Cluster::start_with(unprovisioned(3)).await;
    for node in &cluster.nodes {
        eventually(
            Duration::from_secs(30),
            "the node says it waits for the stream",
            || async { node.log().contains(WAITING) },
        )
        .await;
        assert!(
            !node.client().ready().await,
            "{} is not ready without the stream",
            node.id
        );
    }
    let readyz = reqwest::get(format!("{}/readyz", cluster.nodes[0].url)).await.unwrap();
    assert_eq!(readyz.status().as_u16(), 503);
    let body = readyz.text().await.unwrap();
    assert!(body.contains("fsc federation provision"), "{body}");

    let provision = cluster.provision();
    assert!(provision.status.success(), "{}", output_text(&provision));
    for party in ["alice", "bob", "carol"] {
        assert!(
            output_text(&provision).contains(&format!("stream FSC-{party} created")),
            "{}",
            output_text(&provision)
        );
    }
    for node in &mut cluster.nodes {
        node.wait_ready().await;
        // Said once, not at every retry.
        assert_eq!(node.log().matches(WAITING).count(), 1, "{}", node.log());
    }
    let id = cluster.submit_sum(&[json!(19), json!(5), json!(61)]).await;
    for view in cluster.finals(id, Duration::from_secs(60)).await {
        assert_eq!(view["status"], "succeeded", "{view}\n{}", cluster.logs());
        assert_eq!(view["output"]["result"]["sum"], json!(85.0));
    }

    let again = cluster.provision();
    assert!(again.status.success(), "{}", output_text(&again));
    assert!(
        output_text(&again).contains("stream FSC-carol exists as the roster specifies"),
        "{}",
        output_text(&again)
    );
}

#[tokio::test]
async fn every_node_refuses_a_stream_that_republishes_to_a_party() {
    let mut cluster = Cluster::start_with(unprovisioned(3)).await;
    // Alice's stream as the roster specifies it, plus a rule copying every message to alice
    // where carol reads; the other streams are not there yet.
    let names = cluster.names();
    let mut config = fsc_node::config::stream::expected_config(&roster(&cluster).stream, "alice");
    config.republish = Some(stream::Republish {
        source: names.inbox_filter("alice"),
        destination: format!("{}.copies.{COPY}", names.inbox_prefix("carol")),
        headers_only: false,
    });
    let admin = jetstream::new(cluster.connect_as("admin").await);
    admin.create_stream(config).await.unwrap();

    for node in &mut cluster.nodes {
        let status = node.exited(Duration::from_secs(30)).await;
        let log = node.log();
        assert!(
            status.is_some_and(|s| !s.success()),
            "{} refuses to run: {status:?}\n{log}",
            node.id
        );
        assert!(log.contains("`republish`"), "{} names the field:\n{log}", node.id);
        assert!(log.contains("copies"), "{} shows what it found:\n{log}", node.id);
    }
    // A node started on it refuses it too, at once.
    let node = &mut cluster.nodes[0];
    node.respawn();
    assert!(node.exited(Duration::from_secs(30)).await.is_some_and(|s| !s.success()));

    let provision = cluster.provision();
    assert!(!provision.status.success(), "provision does not accept it either");
    assert!(
        output_text(&provision).contains("`republish`"),
        "{}",
        output_text(&provision)
    );

    // The operator puts it right, and the nodes run on it.
    let update = cluster.provision_update();
    assert!(update.status.success(), "{}", output_text(&update));
    assert!(
        output_text(&update).contains("stream FSC-alice updated"),
        "{}",
        output_text(&update)
    );
    let info = admin.get_stream("FSC-alice").await.unwrap().cached_info().clone();
    assert_eq!(info.config.republish, None);
    for node in &mut cluster.nodes {
        node.restart().await;
    }
    let id = cluster.submit_sum(&[json!(1), json!(2), json!(3)]).await;
    for view in cluster.finals(id, Duration::from_secs(60)).await {
        assert_eq!(view["status"], "succeeded", "{view}\n{}", cluster.logs());
    }
}

/// `/readyz` of `node`: its status and body.
async fn readyz(node: &NodeProcess) -> (u16, String) {
    let answer = reqwest::get(format!("{}/readyz", node.url)).await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

/// Waits until `node` says, not ready, that the stream differs in `field`.
async fn refuses(node: &NodeProcess, field: &str) {
    eventually(
        Duration::from_secs(30),
        &format!("{} stops its messages over {field}", node.id),
        || async {
            let (status, body) = readyz(node).await;
            status == 503 && body.contains(field)
        },
    )
    .await;
}

#[tokio::test]
async fn a_stream_replaced_while_nodes_run_is_verified_again_and_refused() {
    // Bob's stream is replaced: bob's inbox breaks and his node verifies at once, alice's within
    // `stream_check_s`.
    let mut cluster = Cluster::start_with(ClusterOptions {
        parties: 2,
        env: vec![("FSC_STREAM_CHECK_S".into(), "1".into())],
        ..Default::default()
    })
    .await;
    let id = cluster.submit_sum(&[json!(1), json!(2)]).await;
    for view in cluster.finals(id, Duration::from_secs(60)).await {
        assert_eq!(view["status"], "succeeded", "{view}");
    }
    // The operator (or whoever got hold of its credentials) swaps the stream for one that lets
    // publishers purge subjects with a rollup header.
    let admin = jetstream::new(cluster.connect_as("admin").await);
    admin.delete_stream("FSC-bob").await.unwrap();
    let mut config = fsc_node::config::stream::expected_config(&roster(&cluster).stream, "bob");
    config.allow_rollup = true;
    admin.create_stream(config).await.unwrap();
    // The nodes, having run, stay up and say why they exchange no messages.
    for node in &cluster.nodes {
        refuses(node, "`allow_rollup` is true").await;
        assert!(node.log().contains("`allow_rollup` is true"), "{}", node.log());
    }
    // The operator puts it right; the nodes compute on it without a restart.
    let update = cluster.provision_update();
    assert!(update.status.success(), "{}", output_text(&update));
    for node in &mut cluster.nodes {
        node.wait_ready().await;
    }
    let id = cluster.submit_sum(&[json!(3), json!(4)]).await;
    for view in cluster.finals(id, Duration::from_secs(60)).await {
        assert_eq!(view["output"]["result"]["sum"], json!(7.0), "{view}");
    }
}

/// The operator adds a rule copying every message elsewhere to the stream of running nodes:
/// within `stream_check_s` every node stops sending and receiving and says why (`/readyz`,
/// `/v1/node`, its page, its log) while it stays up and takes submissions; nothing reaches the
/// stream, so nothing is copied, until the stream is put right, and then what was submitted
/// meanwhile completes.
#[tokio::test]
async fn a_stream_changed_under_running_nodes_carries_nothing_until_put_right() {
    let cluster = Cluster::start_with(ClusterOptions {
        parties: 3,
        env: vec![("FSC_STREAM_CHECK_S".into(), "1".into())],
        ..Default::default()
    })
    .await;
    let id = cluster.submit_sum(&[json!(1), json!(2), json!(3)]).await;
    for view in cluster.finals(id, Duration::from_secs(60)).await {
        assert_eq!(view["status"], "succeeded", "{view}");
    }

    let operator = cluster.admin().await;
    let mut copies = operator.subscribe("copies.>").await.unwrap();
    operator.flush().await.unwrap();
    let mut config = fsc_node::config::stream::expected_config(&roster(&cluster).stream, "alice");
    config.republish = Some(stream::Republish {
        source: cluster.names().inbox_filter("alice"),
        destination: format!("copies.{COPY}"),
        headers_only: false,
    });
    jetstream::new(operator.clone()).update_stream(config).await.unwrap();

    for node in &cluster.nodes {
        refuses(node, "`republish`").await;
        let view = node.client().node().await.unwrap();
        let why = view["not_ready"].as_str().unwrap_or_default();
        assert!(why.contains("`republish`") && why.contains("copies"), "{view}");
        let page = node.page().await;
        assert!(page.contains("`republish`"), "{page}");
        let log = node.log();
        assert!(
            log.contains("sending and receiving no messages until the stream is as the roster specifies"),
            "{log}"
        );
    }
    // Submissions are taken; the shares they produce wait in the outboxes.
    let held = cluster.submit_sum(&[json!(10), json!(20), json!(30)]).await;
    for node in &cluster.nodes {
        let client = node.client();
        eventually(Duration::from_secs(10), "the shares wait in the outbox", || async {
            client.metric("fsc_outbox_pending").await.unwrap() > 0.0
        })
        .await;
    }
    for party in &cluster.parties {
        let info = cluster
            .stream_info_of(&operator, party)
            .await
            .expect("the stream's state");
        assert_eq!(info["state"]["messages"], json!(0), "nothing was published: {info}");
    }

    // The operator puts it right: the nodes, still running, send what waited.
    let update = cluster.provision_update();
    assert!(update.status.success(), "{}", output_text(&update));
    for view in cluster.finals(held, Duration::from_secs(60)).await {
        assert_eq!(
            view["output"]["result"]["sum"],
            json!(60.0),
            "{view}\n{}",
            cluster.logs()
        );
    }
    for node in &cluster.nodes {
        assert_eq!(readyz(node).await.0, 200, "{} is ready again", node.id);
    }
    // Not one copy of the held computation's messages was made. A marker of the operator's own
    // ends what is read.
    operator.publish("copies.end", "".into()).await.unwrap();
    while let Some(copy) = copies.next().await {
        if copy.subject.as_str() == "copies.end" {
            break;
        }
        assert!(!copy.subject.contains(&held.to_string()), "copied: {}", copy.subject);
    }
}

/// A party's broker connection that records the permission violations the broker reports.
struct Party {
    js: jetstream::Context,
    violations: Arc<Mutex<Vec<String>>>,
}

impl Party {
    async fn connect(cluster: &Cluster, id: &str) -> Party {
        let violations = Arc::new(Mutex::new(Vec::new()));
        let seen = violations.clone();
        let client = cluster
            .connect_options(id)
            .event_callback(move |event| {
                let seen = seen.clone();
                async move {
                    if let async_nats::Event::ServerError(error) = event {
                        seen.lock().unwrap().push(error.to_string());
                    }
                }
            })
            .connect(cluster.broker.url())
            .await
            .unwrap();
        // A denied request is never answered: it fails at this timeout.
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(2))
            .build(client);
        Party { js, violations }
    }

    /// Waits until the broker has reported a violation on `subject`.
    async fn refused(&self, subject: &str) {
        let wanted = format!("Permissions Violation for Publish to \"{subject}\"");
        eventually(Duration::from_secs(10), &wanted, || async {
            self.violations.lock().unwrap().iter().any(|v| v.contains(&wanted))
        })
        .await;
    }
}

#[tokio::test]
async fn a_party_cannot_create_the_stream_read_subject_counts_or_park_data_for_outsiders() {
    let mut cluster = Cluster::start_with(unprovisioned(3)).await;
    let names = cluster.names();
    let bob = Party::connect(&cluster, "bob").await;

    // Creating a stream (with a rule copying everything to bob) is the operator's alone.
    let mut config = fsc_node::config::stream::expected_config(&roster(&cluster).stream, "alice");
    config.republish = Some(stream::Republish {
        source: names.inbox_filter("alice"),
        destination: format!("{}.copies.>", names.inbox_prefix("bob")),
        headers_only: false,
    });
    assert!(bob.js.create_stream(config.clone()).await.is_err());
    bob.refused("$JS.API.STREAM.CREATE.FSC-alice").await;
    let provision = cluster.provision();
    assert!(provision.status.success(), "{}", output_text(&provision));
    assert!(bob.js.update_stream(config).await.is_err());
    bob.refused("$JS.API.STREAM.UPDATE.FSC-alice").await;
    assert!(bob.js.delete_stream("FSC-alice").await.is_err());
    bob.refused("$JS.API.STREAM.DELETE.FSC-alice").await;
    for node in &mut cluster.nodes {
        node.wait_ready().await;
    }

    // A message from bob waits for carol, whose node is down.
    let mut cluster = cluster;
    cluster.node_mut("carol").kill();
    let to_carol = names.subject(&Uuid::new_v4().to_string(), "carol", "bob");
    bob.js
        .publish(to_carol.clone(), vec![1; 100].into())
        .await
        .unwrap()
        .await
        .unwrap();
    let pending = names.inbox_filter("carol");
    let counts = subject_counts(&cluster).await;
    assert_eq!(
        counts["state"]["subjects"][&to_carol],
        json!(1),
        "the admin sees it: {counts}"
    );

    // bob cannot ask which pairs have messages pending...
    let info = bob
        .js
        .request::<_, Value, Value>(
            "STREAM.INFO.FSC-carol".to_string(),
            &json!({"subjects_filter": pending}),
        )
        .await;
    assert!(info.is_err(), "{info:?}");
    bob.refused("$JS.API.STREAM.INFO.FSC-carol").await;
    // ...and the stream list it may read has no subject details.
    let list: Value = bob.js.request("STREAM.LIST".to_string(), &json!({})).await.unwrap();
    let streams = list["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 3, "{list}");
    for stream in streams {
        let state = &stream["state"];
        let carols = stream["config"]["name"] == "FSC-carol";
        assert_eq!(state["messages"].as_u64().unwrap() > 0, carols, "{list}");
        assert!(state.get("subjects").is_none(), "{list}");
    }

    // Nothing can be parked for a party outside the roster, nor sent as another party.
    let before = subject_counts(&cluster).await["state"]["messages"].as_u64().unwrap();
    for (to, from) in [("mallory", "bob"), ("carol", "alice")] {
        let subject = names.subject(&Uuid::new_v4().to_string(), to, from);
        let ack = bob
            .js
            .publish(subject.clone(), vec![7; 1000].into())
            .await
            .unwrap()
            .await;
        assert!(ack.is_err(), "{subject}: {ack:?}");
        bob.refused(&subject).await;
    }
    let after = subject_counts(&cluster).await;
    assert_eq!(after["state"]["messages"].as_u64(), Some(before), "{after}");
    assert_eq!(
        after["state"]["subjects"].as_object().map(|s| s.len()),
        Some(1),
        "only the message to carol: {after}"
    );
}

/// A federation set up before the streams were per party has one stream for all (here even the
/// one its nodes created before provisioning existed, without limits): `provision` says so, and
/// `provision --update` replaces it by the streams per party once it holds no message.
#[tokio::test]
async fn the_stream_older_nodes_created_is_replaced_once_empty() {
    let mut cluster = Cluster::start_with(unprovisioned(2)).await;
    let admin = jetstream::new(cluster.connect_as("admin").await);
    admin
        .create_stream(stream::Config {
            name: "FSC".into(),
            subjects: vec!["fsc.>".into()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            discard: stream::DiscardPolicy::New,
            duplicate_window: Duration::from_secs(120),
            max_age: Duration::from_secs(7200),
            ..Default::default()
        })
        .await
        .unwrap();
    let refused = cluster.provision();
    assert!(!refused.status.success());
    assert!(
        output_text(&refused).contains("the one stream for all parties of an older fsc"),
        "{}",
        output_text(&refused)
    );
    // A message still waits in it: not replaced, until it is delivered (played by a purge).
    let waiting = admin.publish("fsc.c.bob.alice", "x".into()).await.unwrap().await;
    assert!(waiting.is_ok(), "{waiting:?}");
    let refused = cluster.provision_update();
    assert!(!refused.status.success());
    assert!(
        output_text(&refused).contains("it holds 1 messages"),
        "{}",
        output_text(&refused)
    );
    admin.get_stream("FSC").await.unwrap().purge().await.unwrap();
    let update = cluster.provision_update();
    assert!(update.status.success(), "{}", output_text(&update));
    // Started again, as a node that met the old stream has stopped.
    for node in &mut cluster.nodes {
        node.restart().await;
    }
    let id = cluster.submit_sum(&[json!(4), json!(5)]).await;
    for view in cluster.finals(id, Duration::from_secs(60)).await {
        assert_eq!(view["output"]["result"]["sum"], json!(9.0), "{view}");
    }
}

/// A federation with a stream name and subject prefix of its own (as two federations sharing a
/// broker account need) computes with nothing under the default names.
#[tokio::test]
async fn a_federation_with_its_own_names_uses_only_them() {
    let cluster = Cluster::start_with(ClusterOptions {
        parties: 3,
        init_args: ["--stream-name", "ACME", "--subject-prefix", "acme.fsc"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    })
    .await;
    let names = cluster.names();
    assert_eq!(names.stream(), "ACME");
    let admin = cluster.connect_as("admin").await;
    let mut copies = admin.subscribe(">").await.unwrap();
    admin.flush().await.unwrap();
    let id = cluster.submit_sum(&[json!(19), json!(5), json!(61)]).await;
    for view in cluster.finals(id, Duration::from_secs(60)).await {
        assert_eq!(view["output"]["result"]["sum"], json!(85.0), "{view}");
    }
    // Every message of the computation went under the federation's prefix, every reply under its
    // parties' inbox prefixes; nothing under the defaults.
    // A marker of the admin's own ends what is read: everything before it was checked.
    admin.publish("marker.end", "".into()).await.unwrap();
    let mut seen = 0;
    while let Some(message) = copies.next().await {
        let subject = message.subject.as_str();
        if subject == "marker.end" {
            break;
        }
        assert!(
            !subject.starts_with("fsc.") && !subject.contains("_INBOX_FSC"),
            "{subject}"
        );
        if subject.contains(&id.to_string()) {
            assert!(names.parse(subject).is_some(), "{subject}");
            seen += 1;
        }
    }
    assert!(seen > 0, "the computation's messages were seen");
    let mut streams: Vec<String> = jetstream::new(admin).stream_names().try_collect().await.unwrap();
    streams.sort();
    assert_eq!(streams, ["ACME-alice", "ACME-bob", "ACME-carol"]);
}

/// What the broker's permissions cannot stop: nats-server checks the subject a party publishes
/// to, never the reply subject it names (bar its own reserved prefixes). bob asks the JetStream
/// API something with the reply pointed at the pair alice→carol, and the broker stores its
/// answer in the stream there; carol's node drops it as malformed, and computing goes on.
#[tokio::test]
async fn a_jetstream_answer_on_a_pairs_subject_is_dropped_by_its_recipient() {
    let cluster = Cluster::start(3).await;
    let bob = cluster.connect_as("bob").await;
    let forged = cluster.names().subject(&Uuid::new_v4().to_string(), "carol", "alice");
    bob.publish_with_reply("$JS.API.INFO", forged, "".into()).await.unwrap();
    bob.flush().await.unwrap();
    let carol = cluster.node("carol").client();
    eventually(Duration::from_secs(10), "carol drops the answer", || async {
        carol
            .metric("fsc_messages_rejected_total{reason=\"malformed\"}")
            .await
            .unwrap()
            == 1.0
    })
    .await;
    let id = cluster.submit_sum(&[json!(1), json!(2), json!(3)]).await;
    for view in cluster.finals(id, Duration::from_secs(60)).await {
        assert_eq!(view["output"]["result"]["sum"], json!(6.0), "{view}");
    }
}
