//! The operator page (`GET /`) as a browser shows it: headless Chromium (Debian's `chromium`,
//! installed by scripts/setup) loads it from a running federation after computations ran, and
//! the test reads the DOM Chromium built.

use fsc_client::Client;
use fsc_e2e::{Cluster, ClusterOptions, clients_env};
use fsc_node::config::roster::Roster;
use fsc_node::envelope::{Envelopes, Kind};
use fsc_node::keys::NodeKeys;
use rand_core::SeedableRng;
use serde_json::json;
use std::process::Command;
use std::time::Duration;
use uuid::Uuid;

const FINAL: Duration = Duration::from_secs(60);

/// The DOM of `url` after Chromium loaded it (`--dump-dom`), in a new throw-away profile (so
/// that no credentials carry over from one load to the next). Chromium logs to stderr what the
/// page's console shows: nothing may have been blocked by the page's Content-Security-Policy.
fn chromium_dom(url: &str) -> String {
    let profile = tempfile::tempdir().expect("a profile directory");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let output = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {chromium} (scripts/setup installs it): {e}"));
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let console = String::from_utf8_lossy(&output.stderr);
    assert!(
        !console.contains("Content Security Policy"),
        "the page's policy blocked a part of it:\n{console}"
    );
    String::from_utf8(output.stdout).expect("the DOM is UTF-8")
}

/// The page shows the node, its peers as heard from, the broker, and the computations with
/// status and failure reason, to a browser presenting an API token (HTTP Basic, as a browser
/// sends it after its login prompt); without one, nothing but a request to sign in.
#[tokio::test]
async fn the_operator_page_shows_the_node_its_peers_and_its_computations() {
    let cluster = Cluster::start_with(ClusterOptions {
        parties: 3,
        env: vec![clients_env(&[("ops", "token-ops", true), ("app", "token-app", false)])],
        ..Default::default()
    })
    .await;
    let client = |node: usize| Client::new(&cluster.nodes[node].url, Some("token-app".into()));

    let succeeded = Uuid::new_v4();
    for (node, input) in [(0, 19), (1, 5), (2, 61)] {
        let answer = client(node)
            .submit(&cluster.sum_request(succeeded, json!(input)))
            .await
            .unwrap();
        assert_eq!(answer.status, 202, "{}", answer.body);
    }
    let view = client(0).wait_final(succeeded, FINAL).await.unwrap();
    assert_eq!(view["status"], "succeeded", "{view}\n{}", cluster.logs());
    // A computation only alice joined: it waits, until cancelled (then failed, with a reason).
    let (pending, cancelled) = (Uuid::new_v4(), Uuid::new_v4());
    for id in [pending, cancelled] {
        let answer = client(0).submit(&cluster.sum_request(id, json!(1))).await.unwrap();
        assert_eq!(answer.status, 202, "{}", answer.body);
    }
    client(0).cancel(cancelled).await.unwrap();

    let address = cluster.nodes[0].url.trim_start_matches("http://");
    let dom = chromium_dom(&format!("http://ops:token-ops@{address}/"));
    for shown in [
        "<code id=\"node\">alice</code>".to_string(),
        "<code>bob</code>".into(),
        "<code>carol</code>".into(),
        "signed in as <code>ops</code> (admin)".into(),
        "connected, inbox consumer pulling".into(),
        "this node's inbox".into(),
        "http-equiv=\"refresh\"".into(),
        format!("<code>{succeeded}</code>"),
        format!("<code>{pending}</code>"),
        format!("<code>{cancelled}</code>"),
        "<td class=\"succeeded\">succeeded</td>".into(),
        "<td class=\"pending\">pending</td>".into(),
        "<td class=\"failed\">failed</td>".into(),
        "cancelled: cancelled by a client".into(),
        "alice, bob, carol".into(),
    ] {
        assert!(dom.contains(&shown), "the page lacks {shown}:\n{dom}");
    }
    // Both peers sent alice their shares: each row says how long ago, none says "not since".
    assert!(!dom.contains("not since this node started"), "{dom}");
    assert_eq!(dom.matches(" ago ").count(), 2, "{dom}");
    let section = |name: &str| {
        let start = dom
            .find(&format!("id=\"{name}\""))
            .unwrap_or_else(|| panic!("no {name}: {dom}"));
        dom[start..].split("</table>").next().unwrap().to_string()
    };
    assert!(section("active").contains(&pending.to_string()));
    assert!(!section("active").contains(&succeeded.to_string()));
    assert!(section("recent").contains(&cancelled.to_string()));

    // Without a token, or with a wrong one, Chromium gets nothing of the node's state (headless,
    // it has no prompt to show); a browser with one is asked to sign in.
    for url in [format!("http://{address}/"), format!("http://ops:wrong@{address}/")] {
        let dom = chromium_dom(&url);
        assert!(
            !dom.contains(&succeeded.to_string()) && !dom.contains("bob"),
            "{url}: {dom}"
        );
    }
    let answer = reqwest::get(format!("http://{address}/")).await.unwrap();
    assert_eq!(answer.status(), 401);
    assert_security_headers(answer.headers());
    let challenge = answer.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert_eq!(challenge, "Basic realm=\"fsc node alice\", charset=\"UTF-8\"");
    assert!(answer.text().await.unwrap().contains("needs an API token"));
}

/// The headers that keep a browser from running or loading anything the page does not hold,
/// framing it, sniffing its type, or sending its URL on.
fn assert_security_headers(headers: &reqwest::header::HeaderMap) {
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string());
    let policy = header("content-security-policy").expect("a Content-Security-Policy");
    for directive in ["default-src 'none'", "style-src 'sha256-", "frame-ancestors 'none'"] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(header("x-frame-options").as_deref(), Some("DENY"));
    assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));
    assert_eq!(header("referrer-policy").as_deref(), Some("no-referrer"));
}

/// What a peer can put on the page is bounded: a helper invitation from bob (sealed with bob's
/// keys, as a dishonest bob's node would) naming a megabyte-long microprotocol and party fails
/// at alice, and her page shows both cut short.
#[tokio::test]
async fn what_a_peer_sends_is_shown_cut_short() {
    let cluster = Cluster::start(2).await;
    let dir = cluster.path();
    let keys = NodeKeys::load(&dir.join("bob/x25519.key"), &dir.join("bob/ed25519.key")).unwrap();
    let roster = Roster::load(&dir.join("federation.toml")).unwrap();
    let bob = Envelopes::new("bob", keys, &roster).unwrap();
    let id = Uuid::new_v4();
    let huge = "M".repeat(1 << 20);
    let invitation = json!({
        "microprotocol": huge,
        "parties": ["alice", "bob", huge.to_lowercase()],
        "parameters": {},
        "deadline_s": 60,
    });
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(21);
    let wire = bob
        .seal(
            id,
            "alice",
            0,
            Kind::Invite,
            invitation.to_string().as_bytes(),
            &mut rng,
        )
        .unwrap();
    let js = async_nats::jetstream::new(cluster.connect_as("bob").await);
    let subject = cluster.names().subject(&id.to_string(), "alice", "bob");
    js.publish(subject, wire.into()).await.unwrap().await.unwrap();
    let view = cluster.final_at("alice", id, FINAL).await;
    assert_eq!(view["status"], "failed", "{view}");

    let answer = reqwest::get(format!("{}/", cluster.nodes[0].url)).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_security_headers(answer.headers());
    let page = answer.text().await.unwrap();
    assert!(page.contains(&id.to_string()), "the computation is listed");
    assert!(page.contains("bytes in all)"), "the fields say they were cut");
    assert!(page.len() < 64 * 1024, "a page of {} bytes", page.len());
}
