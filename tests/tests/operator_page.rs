//! The operator page (`GET /`) as a browser shows it: headless Chromium (Debian's `chromium`,
//! installed by scripts/setup) loads it from a running federation after computations ran, and
//! the test reads the DOM Chromium built.

use fsc_client::Client;
use fsc_e2e::{Cluster, ClusterOptions, clients_env, eventually};
use fsc_node::config::roster::Roster;
use fsc_node::envelope::{Envelopes, Kind};
use fsc_node::keys::NodeKeys;
use rand_core::SeedableRng;
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;
use uuid::Uuid;

const FINAL: Duration = Duration::from_secs(60);

/// Chromium's flags for a test: headless, no sandbox (root in CI), and nothing that reaches out
/// on its own (updates, sync, QUIC, background requests).
const BROWSER_FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// The DOM of `url` after Chromium loaded it (`--dump-dom`), in a new throw-away profile (so
/// that no credentials carry over from one load to the next). Chromium logs to stderr what the
/// page's console shows: nothing may have been blocked by the page's Content-Security-Policy.
fn chromium_dom(url: &str) -> String {
    let profile = tempfile::tempdir().expect("a profile directory");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let output = Command::new(&chromium)
        .args(BROWSER_FLAGS)
        .args(["--enable-logging=stderr", "--v=0"])
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
        // Who cancelled, and who submitted (the admin's view).
        "cancelled: cancelled by client app".into(),
        "alice, bob, carol".into(),
        // No policy: said so; the budget's table has the node's total for an admin.
        "No <code>[policy]</code>".into(),
        "<th>the node</th><td>0</td><td>0 (no cap)</td>".into(),
        "<th>submitted by</th>".into(),
        "<td class=\"client\">app</td>".into(),
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
    for id in [succeeded, pending, cancelled] {
        assert!(section("list").contains(&id.to_string()), "{id} in the list");
    }
    // The admin may cancel what has not ended, and only that.
    assert!(section("active").contains(&format!("action=\"/cancel/{pending}\"")));
    assert!(!dom.contains(&format!("action=\"/cancel/{succeeded}\"")));
    // Another client sees its own computations, without buttons.
    let dom = chromium_dom(&format!("http://app:token-app@{address}/"));
    assert!(dom.contains(&pending.to_string()) && !dom.contains("<form"), "{dom}");
    assert!(
        dom.contains("id=\"budget\"") && !dom.contains("<th>the node</th>") && !dom.contains("submitted by"),
        "only an admin sees every client's and the node's: {dom}"
    );

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

/// Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
/// commands on its fd 3, answers on its fd 4, each a JSON text ended by a NUL byte), for what a
/// DOM dump cannot show: the layout in a window of a given width, and clicks. The browser runs
/// with the same flags as `chromium_dom`, in a throw-away profile, and is killed on drop.
struct Browser {
    child: std::process::Child,
    commands: std::fs::File,
    answers: std::io::BufReader<std::fs::File>,
    next: u64,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// A browser window `width` × `height` px showing `url`, loaded.
    fn open(url: &str, width: u32, height: u32) -> Browser {
        use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
        use std::os::unix::process::CommandExt;
        let pipe = || {
            let mut fds = [0; 2];
            // SAFETY: pipe2 fills the two fds, which this function then owns.
            assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
        };
        let (command_read, command_write) = pipe();
        let (answer_read, answer_write) = pipe();
        let profile = tempfile::tempdir().expect("a profile directory");
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
        let mut command = Command::new(&chromium);
        command
            .args(BROWSER_FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--window-size={width},{height}"))
            .args(["--remote-debugging-pipe", "about:blank"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let (from, to) = (command_read.into_raw_fd(), answer_write.into_raw_fd());
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec. The pipe
        // ends move above 10 first, so that placing one on 3 or 4 cannot close the other.
        unsafe {
            command.pre_exec(move || {
                let high_from = libc::fcntl(from, libc::F_DUPFD, 10);
                let high_to = libc::fcntl(to, libc::F_DUPFD, 10);
                if high_from < 0 || high_to < 0 || libc::dup2(high_from, 3) < 0 || libc::dup2(high_to, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {chromium} (scripts/setup installs it): {e}"));
        // SAFETY: the parent's copies of the child's ends, closed now that it has its own.
        unsafe {
            libc::close(from);
            libc::close(to);
        }
        let mut browser = Browser {
            child,
            commands: std::fs::File::from(command_write),
            answers: std::io::BufReader::new(std::fs::File::from(answer_read)),
            next: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({"url": url}));
        let target = target["targetId"].as_str().expect("a target id").to_string();
        let attached = browser.call("Target.attachToTarget", json!({"targetId": target, "flatten": true}));
        browser.session = attached["sessionId"].as_str().expect("a session").to_string();
        browser.wait_until(
            "the page loaded",
            "location.protocol === 'http:' && document.readyState === 'complete'",
        );
        browser
    }

    /// Sends one command (to the page once attached) and returns its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        use std::io::{BufRead, Write};
        self.next += 1;
        let mut message = json!({"id": self.next, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        self.commands.write_all(&bytes).expect("write to chromium");
        loop {
            let mut answer = Vec::new();
            let read = self.answers.read_until(0, &mut answer).expect("read from chromium");
            assert!(read > 0, "chromium closed its pipe");
            answer.pop();
            let answer: Value = serde_json::from_slice(&answer).expect("chromium answers JSON");
            if answer["id"] == json!(self.next) {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// The value of a JavaScript expression in the page.
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        assert!(result.get("exceptionDetails").is_none(), "{expression}: {result}");
        result["result"]["value"].clone()
    }

    /// Evaluates `condition` every 20 ms until it is true (at most 30 s).
    fn wait_until(&mut self, what: &str, condition: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.eval(condition) != json!(true) {
            if std::time::Instant::now() > deadline {
                let showing = self.eval(
                    "location.href + ' (' + document.readyState + '): ' + document.body?.innerText?.slice(0, 600)",
                );
                panic!("not within 30 s: {what}; the browser shows {showing}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The page in a 1280 px window: the computations' tables fit without scrolling sideways and a
/// long failure reason (the `unknown_microprotocol` one lists every microprotocol) wraps into a
/// row of at most two lines; the list pages on and filters by status; an admin cancels a
/// computation with its button, and a form not made by the page is refused.
#[tokio::test]
async fn the_page_fits_its_window_pages_filters_and_cancels() {
    let cluster = Cluster::start_with(ClusterOptions {
        parties: 3,
        env: vec![clients_env(&[("ops", "token-ops", true), ("app", "token-app", false)])],
        ..Default::default()
    })
    .await;
    let app = |node: usize| Client::new(&cluster.nodes[node].url, Some("token-app".into()));
    let alice = app(0);
    let succeeded = cluster_sum(&cluster, &app).await;
    let mut nope = cluster.sum_request(Uuid::new_v4(), json!(1));
    nope["microprotocol"] = json!("Nope");
    let refused = alice.submit(&nope).await.unwrap();
    assert_eq!(refused.status, 501, "{}", refused.body);
    let nope = nope["id"].as_str().unwrap().to_string();

    let address = cluster.nodes[0].url.trim_start_matches("http://").to_string();
    let page = format!("http://ops:token-ops@{address}/");
    let mut browser = tokio::task::spawn_blocking(move || Browser::open(&page, 1280, 900))
        .await
        .unwrap();
    let layout = browser.eval(&format!(
        "(() => {{
            const row = id => [...document.querySelectorAll('#list tr')].find(r => r.textContent.includes(id));
            const nope = row('{nope}'), ok = row('{succeeded}');
            return {{
                scroll: document.documentElement.scrollWidth, window: window.innerWidth,
                nope: nope ? nope.getBoundingClientRect().height : null,
                ok: ok ? ok.getBoundingClientRect().height : null,
                reason: nope ? nope.querySelector('td.reason').textContent : '',
            }};
        }})()"
    ));
    // FSC_PAGE_SCREENSHOT=FILE.png keeps what the browser shows (docs/operator-page.png).
    if let Some(path) = std::env::var_os("FSC_PAGE_SCREENSHOT") {
        let shot = browser.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let png = fsc_node::keys::decode_base64(shot["data"].as_str().unwrap(), "screenshot").unwrap();
        std::fs::write(path, png).unwrap();
    }
    assert_eq!(layout["window"], 1280, "{layout}");
    assert!(
        layout["scroll"].as_f64() <= layout["window"].as_f64(),
        "scrolls sideways: {layout}"
    );
    let (nope_height, ok_height) = (layout["nope"].as_f64().unwrap(), layout["ok"].as_f64().unwrap());
    assert!(
        nope_height <= 2.2 * ok_height,
        "the long reason makes a tall row: {layout}"
    );
    assert!(
        layout["reason"]
            .as_str()
            .unwrap()
            .contains("StatisticsContingencyVertical)"),
        "the whole reason is there: {layout}"
    );

    // 60 computations only alice joins: they wait, more than a page of 50.
    let waiting: Vec<Value> = (0..60).map(|_| cluster.sum_request(Uuid::new_v4(), json!(1))).collect();
    for result in alice.submit_all(&waiting).await.unwrap() {
        assert_eq!(result["status"], "pending", "{result}");
    }
    browser.eval("location.reload()");
    browser.wait_until(
        "the page with 60 more",
        "document.readyState === 'complete' && document.querySelectorAll('#list tr').length - 1 === 50",
    );
    // They all started in the same millisecond, so which 50 come first is the ids' order: the
    // rest of the test takes the ids the page shows with a button.
    let shown = browser.eval("[...document.querySelectorAll('#active form')].map(f => f.action.split('/').pop())");
    let shown: Vec<String> = serde_json::from_value(shown).unwrap();
    assert_eq!(
        shown.len(),
        50,
        "the newest 50 waiting ones, each with a button: {shown:?}"
    );
    let last = shown[0].clone();

    // The next page: the rest, ending with the oldest (the sum that succeeded first).
    browser.eval("document.querySelector('#paging a[href*=\"before=\"]').click()");
    browser.wait_until(
        "the older page",
        "location.search.includes('before=') && document.readyState === 'complete'",
    );
    let older = browser.eval("[...document.querySelectorAll('#list tr td:first-child')].map(td => td.textContent)");
    let older: Vec<&str> = older.as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(older.len(), 62 - 50, "{older:?}");
    assert_eq!(older.last().copied(), Some(succeeded.to_string().as_str()), "{older:?}");
    assert!(!older.contains(&last.as_str()), "the newest are on the first page");

    // The filter: failed only.
    browser.eval("[...document.querySelectorAll('#filter a')].find(a => a.textContent === 'failed').click()");
    browser.wait_until(
        "the failed ones",
        "location.search === '?status=failed' && document.readyState === 'complete'",
    );
    let statuses = browser.eval("[...document.querySelectorAll('#list tr td:nth-child(4)')].map(td => td.textContent)");
    assert_eq!(statuses, json!(["failed"]), "only the refused one has failed");

    // Cancel the newest waiting computation with its button (the page's own form and token).
    browser.eval(&format!(
        "document.querySelector('#active form[action=\"/cancel/{last}\"] button').click()"
    ));
    browser.wait_until(
        "the page confirms",
        &format!("(document.getElementById('notice') || {{}}).textContent?.includes('{last}') === true"),
    );
    let view = alice
        .get(Uuid::parse_str(&last).unwrap(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(view["status"], "failed", "{view}");
    assert_eq!(view["error"]["code"], "cancelled", "{view}");

    // A form not made by this page (another site's, a guessed token, another computation's, or
    // a client that is no admin) cancels nothing.
    let token_of = |id: &str| {
        let dom = chromium_dom(&format!("http://ops:token-ops@{address}/"));
        let form = dom
            .split(&format!("action=\"/cancel/{id}\""))
            .nth(1)
            .unwrap()
            .to_string();
        form.split("value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string()
    };
    let victim = shown[1].clone();
    let other_token = token_of(&shown[2]);
    let http = reqwest::Client::new();
    for (who, token) in [
        ("token-ops", String::new()),
        ("token-ops", "00".repeat(32)),
        ("token-ops", other_token),
        ("token-app", token_of(&victim)),
    ] {
        let answer = http
            .post(format!("http://{address}/cancel/{victim}"))
            .basic_auth("someone", Some(who))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403, "{who} {token}");
    }
    let view = alice
        .get(Uuid::parse_str(&victim).unwrap(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(view["status"], "pending", "{view}");
}

/// A SecureSum that succeeds at all three nodes; its id.
async fn cluster_sum(cluster: &Cluster, client: &impl Fn(usize) -> Client) -> Uuid {
    let id = Uuid::new_v4();
    for (node, input) in [(0, 19), (1, 5), (2, 61)] {
        let answer = client(node)
            .submit(&cluster.sum_request(id, json!(input)))
            .await
            .unwrap();
        assert_eq!(answer.status, 202, "{}", answer.body);
    }
    let view = client(0).wait_final(id, FINAL).await.unwrap();
    assert_eq!(view["status"], "succeeded", "{view}");
    id
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
/// at alice, and her page shows both cut short. It invites alice as a helper (she is not among
/// the parties): an invite naming her as a party would be a proposal, which names only roster
/// parties.
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
        "parties": ["bob", huge.to_lowercase()],
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

/// A computation alice's client submitted is, on bob's page, in "Waiting for your input" with
/// its definition and proposer (never alice's input), and on alice's page it runs "waiting for
/// bob, carol".
#[tokio::test]
async fn the_page_shows_proposals_and_whom_a_computation_waits_for() {
    let cluster = Cluster::start(3).await;
    let id = Uuid::new_v4();
    let alice = cluster.nodes[0].client();
    let answer = alice.submit(&cluster.sum_request(id, json!(314159))).await.unwrap();
    assert_eq!(answer.status, 202, "{}", answer.body);
    let bob = cluster.nodes[1].client();
    eventually(FINAL, "alice's proposal at bob", || async {
        bob.proposals().await.unwrap()["proposals"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    })
    .await;

    let section = |dom: &str, name: &str| {
        let start = dom
            .find(&format!("id=\"{name}\""))
            .unwrap_or_else(|| panic!("no {name}: {dom}"));
        dom[start..].split("</table>").next().unwrap().to_string()
    };
    let dom = chromium_dom(&format!("{}/", cluster.nodes[1].url));
    assert!(dom.contains("<h2>Waiting for your input</h2>"), "{dom}");
    let proposals = section(&dom, "proposals");
    for shown in [
        format!("<code>{id}</code>"),
        "SecureSum".into(),
        "alice, bob, carol".into(),
        "<td><code>alice</code></td>".into(),
        "<td class=\"wrap waiting\">bob, carol</td>".into(),
    ] {
        assert!(proposals.contains(&shown), "bob's proposals lack {shown}:\n{proposals}");
    }
    assert!(!dom.contains("314159"), "no input on the page: {dom}");

    let dom = chromium_dom(&format!("{}/", cluster.nodes[0].url));
    let active = section(&dom, "active");
    assert!(active.contains(&id.to_string()), "{active}");
    assert!(
        active.contains("<td class=\"wrap waiting\">waiting for bob, carol</td>"),
        "{active}"
    );
    assert!(
        section(&dom, "proposals").contains("none"),
        "alice has no proposal: {dom}"
    );
}
