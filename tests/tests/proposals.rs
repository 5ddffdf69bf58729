//! Proposals (issue 24): a computation submitted at one node is listed at the other parties'
//! nodes, with its definition, before their clients submit; a party's client may decline it, and
//! the computation then fails everywhere with `declined`, naming the decliner. Which parties have
//! not joined is shown with the computation and with the proposal.

use fsc_client::Client;
use fsc_e2e::{Cluster, ClusterOptions, eventually, fsc_bin, output_text};
use fsc_node::config::roster::Roster;
use fsc_node::envelope::{Envelopes, Kind};
use fsc_node::keys::NodeKeys;
use rand_core::SeedableRng;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

const FINAL: Duration = Duration::from_secs(60);

/// The proposal `id` as `client`'s node lists it, if it does.
async fn proposal(client: &Client, id: Uuid) -> Option<Value> {
    let listed = client.proposals().await.expect("list proposals");
    listed["proposals"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|p| p["id"] == id.to_string())
        .cloned()
}

/// Waits until `client`'s node lists proposal `id`, and returns it.
async fn listed(client: &Client, id: Uuid, what: &str) -> Value {
    eventually(FINAL, what, || async { proposal(client, id).await.is_some() }).await;
    proposal(client, id).await.expect("listed")
}

/// `fsc <args> --node <url>`.
async fn fsc(args: &[&str], url: &str) -> std::process::Output {
    tokio::process::Command::new(fsc_bin())
        .args(args)
        .args(["--node", url])
        .output()
        .await
        .expect("run fsc")
}

/// alice's client submits; bob's node lists the proposal with its definition (never alice's
/// input) before bob's client does anything, and alice's computation says it waits for bob and
/// carol. bob declines with `fsc decline`: alice's computation fails with `declined` naming bob,
/// carol's node no longer lists it, and bob's later submission finds the failure.
#[tokio::test]
async fn bob_lists_alices_proposal_and_declines_it() {
    let cluster = Cluster::start(3).await;
    let id = Uuid::new_v4();
    let mut request = cluster.sum_request(id, json!(271828));
    request["parameters"] = json!({"digits_after": 2});
    request["deadline_s"] = json!(120);
    let alice = cluster.nodes[0].client();
    assert_eq!(alice.submit(&request).await.unwrap().status, 202);
    let defined = alice.get(id, Duration::ZERO).await.unwrap();

    let bob = cluster.nodes[1].client();
    let shown = listed(&bob, id, "alice's proposal at bob").await;
    assert_eq!(shown["microprotocol"], "SecureSum", "{shown}");
    assert_eq!(shown["parties"], json!(["alice", "bob", "carol"]), "{shown}");
    assert_eq!(shown["parameters"], defined["parameters"], "{shown}");
    assert_eq!(shown["proposer"], "alice", "{shown}");
    assert_eq!(shown["joined"], json!(["alice"]), "{shown}");
    assert_eq!(shown["waiting_for"], json!(["bob", "carol"]), "{shown}");
    assert!(!shown.to_string().contains("271828"), "no input in a proposal: {shown}");
    assert!(shown["deadline_at"].is_string(), "{shown}");

    // alice waits for both: neither has sent her anything.
    let view = alice.get(id, Duration::ZERO).await.unwrap();
    assert_eq!(view["waiting_for"], json!(["bob", "carol"]), "{view}");
    let status = fsc(&["status", &id.to_string()], &cluster.nodes[0].url).await;
    assert!(status.status.success(), "{}", output_text(&status));
    let said = String::from_utf8_lossy(&status.stderr);
    assert!(said.contains("waiting for bob and carol"), "{said}");
    let printed: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(printed["waiting_for"], json!(["bob", "carol"]), "{printed}");

    let list = fsc(&["proposals"], &cluster.nodes[1].url).await;
    assert!(list.status.success(), "{}", output_text(&list));
    let lines: Vec<Value> = String::from_utf8(list.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines, vec![shown.clone()]);

    let declined = fsc(&["decline", &id.to_string()], &cluster.nodes[1].url).await;
    assert!(declined.status.success(), "{}", output_text(&declined));
    let printed: Value = serde_json::from_slice(&declined.stdout).unwrap();
    assert_eq!(
        (printed["status"].as_str(), printed["error"]["code"].as_str()),
        (Some("failed"), Some("declined")),
        "{printed}"
    );
    assert_eq!(printed["parameters"], defined["parameters"], "{printed}");
    assert_eq!(
        bob.decline(id).await.unwrap(),
        printed,
        "declining again answers the same"
    );
    assert!(proposal(&bob, id).await.is_none(), "a declined proposal is not listed");

    let alice_final = alice.wait_final(id, FINAL).await.unwrap();
    assert_eq!(
        (
            alice_final["status"].as_str(),
            alice_final["error"]["code"].as_str(),
            alice_final["error"]["party"].as_str()
        ),
        (Some("failed"), Some("declined"), Some("bob")),
        "{alice_final}"
    );
    let message = alice_final["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("bob"), "{alice_final}");

    // carol's node has bob's abort: no longer a proposal there, and her submission fails.
    let carol = cluster.nodes[2].client();
    eventually(FINAL, "bob's abort at carol", || async {
        carol
            .get(id, Duration::ZERO)
            .await
            .is_ok_and(|view| view["status"] == "failed")
    })
    .await;
    assert!(proposal(&carol, id).await.is_none());

    // bob's client submits after all: the decline stands.
    let mut request = cluster.sum_request(id, json!(1));
    request["parameters"] = json!({"digits_after": 2});
    let answer = bob.submit(&request).await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], "failed", "{}", answer.body);

    // Only a proposal can be declined: an unknown id is 404, a submitted computation 409.
    let error = bob.decline(Uuid::new_v4()).await.unwrap_err().to_string();
    assert!(error.contains("answered 404"), "{error}");
    let other = Uuid::new_v4();
    assert_eq!(cluster.submit_at(1, other, json!(1)).await, 202);
    let error = bob.decline(other).await.unwrap_err().to_string();
    assert!(error.contains("answered 409"), "{error}");

    // The decline is in bob's audit log.
    let audit = tokio::process::Command::new(fsc_bin())
        .args(["audit", "log", "--config"])
        .arg(cluster.path().join("bob").join("node.toml"))
        .output()
        .await
        .unwrap();
    assert!(audit.status.success(), "{}", output_text(&audit));
    let log = String::from_utf8(audit.stdout).unwrap();
    let entry: Value = log
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|e| e["action"] == "decline" && e["computation"] == id.to_string())
        .unwrap_or_else(|| panic!("a decline entry: {log}"));
    assert_eq!(entry["detail"]["outcome"], "declined", "{entry}");
}

/// A proposal survives a restart of the node that holds it; the parties' messages mark them as
/// joined; a submission ends it, and the computation succeeds.
#[tokio::test]
async fn a_proposal_survives_a_restart_and_a_submission_ends_it() {
    let mut cluster = Cluster::start(3).await;
    let id = Uuid::new_v4();
    assert_eq!(cluster.submit_at(0, id, json!(1)).await, 202);
    listed(&cluster.nodes[1].client(), id, "alice's proposal at bob").await;
    cluster.nodes[1].restart().await;
    let bob = cluster.nodes[1].client();
    assert!(proposal(&bob, id).await.is_some(), "kept across the restart");

    assert_eq!(cluster.submit_at(2, id, json!(3)).await, 202);
    eventually(FINAL, "carol joined at bob", || async {
        proposal(&bob, id)
            .await
            .is_some_and(|p| p["joined"] == json!(["alice", "carol"]) && p["waiting_for"] == json!(["bob"]))
    })
    .await;
    assert_eq!(cluster.submit_at(1, id, json!(2)).await, 202);
    assert!(proposal(&bob, id).await.is_none(), "submitted: no longer a proposal");
    for view in cluster.finals(id, FINAL).await {
        assert_eq!(view["output"]["result"]["sum"], 6.0, "{view}");
    }
}

/// From five parties a sum goes through an aggregator, and a party's first step sends nothing to
/// the others: the party that starts it invites them, so every node lists it.
#[tokio::test]
async fn every_party_of_a_sum_through_an_aggregator_lists_the_proposal() {
    let cluster = Cluster::start(5).await;
    let id = Uuid::new_v4();
    assert_eq!(cluster.submit_at(0, id, json!(1)).await, 202);
    for node in &cluster.nodes[1..] {
        let shown = listed(&node.client(), id, &format!("alice's proposal at {}", node.id)).await;
        assert_eq!(shown["proposer"], "alice", "{shown}");
    }
    for i in 1..5 {
        assert_eq!(cluster.submit_at(i, id, json!(i + 1)).await, 202);
    }
    for view in cluster.finals(id, FINAL).await {
        assert_eq!(view["output"]["result"]["sum"], 15.0, "{view}");
    }
}

/// Proposals count against their proposer's max_unsolicited_bytes: a flood of them stores only
/// what the bound allows.
#[tokio::test]
async fn proposals_are_bounded_by_the_proposers_unsolicited_bytes() {
    let cluster = Cluster::start_with(ClusterOptions {
        parties: 2,
        env: vec![("FSC_MAX_UNSOLICITED_BYTES".into(), "2000".into())],
        ..ClusterOptions::default()
    })
    .await;
    let alice = cluster.nodes[0].client();
    let ids: Vec<Uuid> = (0..20).map(|_| Uuid::new_v4()).collect();
    for id in &ids {
        assert_eq!(
            alice.submit(&cluster.sum_request(*id, json!(1))).await.unwrap().status,
            202
        );
    }
    // Each computation brings bob one message from alice (an opening): stored with its
    // proposal, or dropped over the quota.
    let bob = cluster.nodes[1].client();
    let stored = || async { bob.proposals().await.unwrap()["proposals"].as_array().unwrap().len() };
    let dropped = || async {
        bob.metric("fsc_messages_rejected_total{reason=\"over_quota\"}")
            .await
            .unwrap_or(0.0) as usize
    };
    eventually(FINAL, "bob stored or dropped every proposal", || async {
        stored().await + dropped().await == ids.len()
    })
    .await;
    let listed = stored().await;
    assert!(
        (1..ids.len()).contains(&listed),
        "{listed} of {} proposals stored",
        ids.len()
    );
}

/// What a peer proposes is listed only if this node could be a party of it: invites (sealed
/// with bob's keys, as a dishonest bob's node would) naming a party outside the roster, not
/// naming bob, or naming a party twice are not listed, nor do they make alice anything (she is
/// among their parties: never a helper); a sound one sent after them is.
#[tokio::test]
async fn a_proposal_this_node_cannot_be_a_party_of_is_not_listed() {
    let cluster = Cluster::start(3).await;
    let dir = cluster.path();
    let keys = NodeKeys::load(&dir.join("bob/x25519.key"), &dir.join("bob/ed25519.key")).unwrap();
    let roster = Roster::load(&dir.join("federation.toml")).unwrap();
    let bob = Envelopes::new("bob", keys, &roster).unwrap();
    let js = async_nats::jetstream::new(cluster.connect_as("bob").await);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(24);
    let invite =
        |parties: Value| json!({"microprotocol": "SecureSum", "parties": parties, "parameters": {}, "deadline_s": 60});
    let unsound = [
        invite(json!(["alice", "bob", "mallory"])),
        invite(json!(["alice", "carol"])),
        invite(json!(["alice", "bob", "bob"])),
    ];
    let sound = invite(json!(["alice", "bob", "carol"]));
    let ids: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    for (id, invitation) in ids.iter().zip(unsound.iter().chain([&sound])) {
        let wire = bob
            .seal(
                *id,
                "alice",
                0,
                Kind::Invite,
                invitation.to_string().as_bytes(),
                &mut rng,
            )
            .unwrap();
        let subject = cluster.names().subject(&id.to_string(), "alice", "bob");
        js.publish(subject, wire.into()).await.unwrap().await.unwrap();
    }
    // One sender, one stream, in order: once the sound one is listed, alice has taken them all.
    let alice = cluster.nodes[0].client();
    let shown = listed(&alice, ids[3], "bob's sound proposal at alice").await;
    assert_eq!(shown["proposer"], "bob", "{shown}");
    for id in &ids[..3] {
        assert!(proposal(&alice, *id).await.is_none(), "{id} is not listed");
        let error = alice.get(*id, Duration::ZERO).await.unwrap_err().to_string();
        assert!(error.contains("answered 404"), "alice did not join {id}: {error}");
    }
}
