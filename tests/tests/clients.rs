//! API clients: no answer depends on a stored input, a computation belongs to the client that
//! submitted it, and a node without clients keeps its API on loopback.

use fsc_client::Client;
use fsc_e2e::{Cluster, ClusterOptions, Representations, clients_env, fsc_bin};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;
use uuid::Uuid;

const FINAL: Duration = Duration::from_secs(60);

/// Re-submitting a computation answers the same whatever the input, through both APIs, before
/// and after it finished. (A wrong input used to be a 409 and the right one a 200, which told a
/// guesser whether a guess at another client's input was right.)
#[tokio::test]
async fn no_answer_depends_on_a_stored_input() {
    let cluster = Cluster::start(2).await;
    let id = Uuid::new_v4();
    // The federatedsecure API computes SecureSum in the original's fixed point: the v1 requests
    // ask for the same, so that both APIs name one definition.
    let v1_request = |input: i64| {
        let mut request = cluster.sum_request(id, json!(input));
        request["parameters"] = json!({"digits_after": 12});
        request
    };
    let alice = cluster.nodes[0].client();
    assert_eq!(alice.submit(&v1_request(5)).await.unwrap().status, 202);
    let representations = Representations::new(&cluster.nodes[0].url, None);
    for round in ["pending", "final"] {
        let mut answers = Vec::new();
        for guess in [5, 6, 1234] {
            let v1 = alice.submit(&v1_request(guess)).await.unwrap();
            let original = representations.start_task(&cluster.parties, id, json!(guess)).await;
            answers.push((v1.status.as_u16(), v1.body, original.0.as_u16(), original.1));
        }
        assert!(answers.iter().all(|a| *a == answers[0]), "{round}: {answers:?}");
        assert_eq!((answers[0].0, answers[0].2), (200, 200), "{round}: {answers:?}");
        if round == "pending" {
            let bob = cluster.nodes[1].client().submit(&v1_request(7)).await.unwrap();
            assert_eq!(bob.status, 202, "{}", bob.body);
            alice.wait_final(id, FINAL).await.unwrap();
        }
    }
    let view = alice.get(id, Duration::ZERO).await.unwrap();
    assert_eq!(
        view["output"]["result"]["sum"],
        json!(12.0),
        "the first input stands: {view}"
    );
}

/// With named clients, a computation belongs to the client that submitted it: another client
/// can neither read, list, re-submit (through either API) nor guess anything about it, while an
/// admin client sees everything.
#[tokio::test]
async fn computations_belong_to_the_client_that_submitted_them() {
    let cluster = Cluster::start_with(ClusterOptions {
        parties: 2,
        env: vec![clients_env(&[
            ("app1", "token-1", false),
            ("app2", "token-2", false),
            ("ops", "token-ops", true),
        ])],
        ..Default::default()
    })
    .await;
    let at = |node: usize, token: &str| Client::new(&cluster.nodes[node].url, Some(token.to_string()));
    let (app1, app2, ops) = (at(0, "token-1"), at(0, "token-2"), at(0, "token-ops"));
    let id = Uuid::new_v4();
    assert_eq!(
        app1.submit(&cluster.sum_request(id, json!(5))).await.unwrap().status,
        202
    );
    // While it waits for bob: app2's long poll is refused at once, as its read is.
    let asked = std::time::Instant::now();
    let error = app2.get(id, Duration::from_secs(30)).await.unwrap_err().to_string();
    assert!(error.contains("answered 404"), "{error}");
    assert!(asked.elapsed() < Duration::from_secs(15), "refused, not kept waiting");
    assert_eq!(
        at(1, "token-1")
            .submit(&cluster.sum_request(id, json!(7)))
            .await
            .unwrap()
            .status,
        202
    );
    let view = app1.wait_final(id, FINAL).await.unwrap();
    assert_eq!(view["output"]["result"]["sum"], json!(12.0), "{view}");

    // app2: as if it did not exist; its id is taken.
    let error = app2.get(id, Duration::ZERO).await.unwrap_err().to_string();
    assert!(error.contains("answered 404"), "{error}");
    let listed = app2.list().await.unwrap();
    assert_eq!(listed["computations"], json!([]), "{listed}");
    for input in [5, 6] {
        let answer = app2.submit(&cluster.sum_request(id, json!(input))).await.unwrap();
        assert_eq!(answer.status, 409, "{}", answer.body);
        assert!(
            answer.body["detail"].as_str().unwrap().contains("taken"),
            "{}",
            answer.body
        );
    }
    let error = app2.cancel(id).await.unwrap_err().to_string();
    assert!(error.contains("answered 404"), "{error}");
    let original = Representations::new(&cluster.nodes[0].url, Some("token-2"));
    let (status, reply) = original.start_task(&cluster.parties, id, json!(5)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");

    // Representations too are their client's: app2 cannot download app1's upload.
    let app1_repr = Representations::new(&cluster.nodes[0].url, Some("token-1"));
    let (status, upload) = app1_repr
        .send(reqwest::Method::PUT, "/representations", json!({"args": [[1, 2, 3]]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{upload}");
    let path = format!("/representation/{}", upload["uuid"].as_str().unwrap());
    assert_eq!(
        original.send(reqwest::Method::GET, &path, json!({})).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, object) = app1_repr.send(reqwest::Method::GET, &path, json!({})).await;
    assert_eq!((status, &object["object"]), (StatusCode::OK, &json!([1, 2, 3])));

    // app1 and the admin see it.
    assert_eq!(app1.list().await.unwrap()["computations"][0]["id"], json!(id));
    assert_eq!(ops.get(id, Duration::ZERO).await.unwrap()["status"], "succeeded");
    assert_eq!(ops.list().await.unwrap()["computations"][0]["id"], json!(id));
    assert_eq!(
        app1.submit(&cluster.sum_request(id, json!(99))).await.unwrap().status,
        200
    );
    // Without a token, or with a wrong one, nothing.
    for client in [Client::new(&cluster.nodes[0].url, None), at(0, "token-3")] {
        assert!(
            client
                .get(id, Duration::ZERO)
                .await
                .unwrap_err()
                .to_string()
                .contains("answered 401")
        );
    }
}

/// The log line without its terminal colours.
fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}

/// The address a node process reports serving on (from its log), and the log so far.
fn serving_address(mut command: Command) -> (String, String) {
    let mut child = command.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut log = String::new();
        for line in stderr.lines() {
            let line = strip_ansi(&line.unwrap_or_default());
            log.push_str(&line);
            log.push('\n');
            if line.contains(": serving node=") || line.contains("error") {
                let _ = tx.send(log.clone());
            }
        }
        let _ = tx.send(log);
    });
    let log = rx.recv_timeout(Duration::from_secs(30)).expect("the node starts");
    let _ = child.kill();
    let _ = child.wait();
    let address = log
        .lines()
        .find(|l| l.contains(": serving node="))
        .and_then(|l| l.split("address=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default()
        .to_string();
    (address, log)
}

/// Told to listen on all interfaces, a node without API clients serves on loopback only and
/// says so; with a client it listens where it is told, if it serves TLS or is allowed plain HTTP. `fsc client add` adds a working client.
#[tokio::test]
async fn without_clients_the_api_stays_on_loopback() {
    let mut cluster = Cluster::start(2).await;
    let config = cluster.path().join("alice/node.toml");
    let node = |env: Vec<(String, String)>| {
        let mut command = Command::new(fsc_bin());
        command
            .args(["node", "--config"])
            .arg(&config)
            .env("FSC_LISTEN", "0.0.0.0:0")
            .env("FSC_NATS_URL", cluster.broker.url())
            .env("FSC_STORE", cluster.path().join("alice-other.sqlite"))
            .env("FSC_LOG", "info")
            .envs(env);
        command
    };
    let (address, log) = serving_address(node(vec![]));
    assert!(address.starts_with("127.0.0.1:"), "{address}\n{log}");
    assert!(log.contains("serving on loopback only"), "{log}");
    // With a client, beyond loopback: only with TLS, or plain HTTP when explicitly allowed.
    let client = clients_env(&[("app", "t", false)]);
    let (address, log) = serving_address(node(vec![client.clone()]));
    assert!(address.is_empty(), "{address}\n{log}");
    assert!(log.contains("would serve plain HTTP on 0.0.0.0:"), "{log}");
    assert!(log.contains("allow_plain_http = true"), "{log}");
    let plain = ("FSC_ALLOW_PLAIN_HTTP".to_string(), "true".to_string());
    let (address, log) = serving_address(node(vec![client, plain]));
    assert!(address.starts_with("0.0.0.0:"), "{address}\n{log}");

    let added = Command::new(fsc_bin())
        .args(["client", "add", "--name", "app3", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let token = String::from_utf8(added.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("fsc_") && token.len() > 40, "{token}");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(!text.contains(&token), "node.toml keeps only the token's digest");
    cluster.node_mut("alice").restart().await;
    let alice = cluster.nodes[0].url.clone();
    assert!(Client::new(&alice, Some(token)).node().await.is_ok());
    assert!(
        Client::new(&alice, None)
            .node()
            .await
            .unwrap_err()
            .to_string()
            .contains("answered 401")
    );
}

/// A monitoring client (`fsc client add --monitor`) reads /metrics, /readyz and the operator
/// page (every client's computations), and nothing else: the token Prometheus holds can neither
/// submit, read, list nor cancel a computation, nor reach the federatedsecure API.
#[tokio::test]
async fn a_monitoring_client_reads_metrics_and_the_page_and_nothing_else() {
    let mut cluster = Cluster::start(3).await;
    let config = cluster.path().join("alice/node.toml");
    let add = |name: &str, flags: &[&str]| {
        Command::new(fsc_bin())
            .args(["client", "add", "--config"])
            .arg(&config)
            .args(["--name", name])
            .args(flags)
            .output()
            .expect("run fsc client add")
    };
    let token = |output: std::process::Output| {
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    };
    let app = token(add("app", &[]));
    let prometheus = token(add("prometheus", &["--monitor"]));
    assert_eq!(
        add("both", &["--admin", "--monitor"]).status.code(),
        Some(2),
        "a usage error"
    );
    let written = std::fs::read_to_string(&config).unwrap();
    assert_eq!(written.matches("monitor = true").count(), 1, "{written}");
    cluster.node_mut("alice").restart().await;
    let url = cluster.node("alice").url.clone();

    let id = Uuid::new_v4();
    let submitted = Client::new(&url, Some(app.clone()))
        .submit(&cluster.sum_request(id, json!(1)))
        .await
        .unwrap();
    assert_eq!(submitted.status, 202, "{}", submitted.body);

    let monitor = Client::new(&url, Some(prometheus.clone()));
    assert!(monitor.metrics().await.unwrap().contains("fsc_build_info"));
    assert!(monitor.ready().await);
    let http = reqwest::Client::new();
    let computation = format!("{url}/v1/computations/{id}");
    let refused = [
        (
            reqwest::Method::POST,
            format!("{url}/v1/computations"),
            cluster.sum_request(Uuid::new_v4(), json!(1)),
        ),
        (
            reqwest::Method::POST,
            format!("{url}/v1/computations/batch"),
            json!({"computations": []}),
        ),
        (reqwest::Method::GET, format!("{url}/v1/computations"), Value::Null),
        (reqwest::Method::GET, computation.clone(), Value::Null),
        (reqwest::Method::DELETE, computation.clone(), Value::Null),
        (reqwest::Method::GET, format!("{url}/v1/node"), Value::Null),
        (reqwest::Method::GET, format!("{url}/openapi.json"), Value::Null),
        (reqwest::Method::GET, format!("{url}/representations"), Value::Null),
        (reqwest::Method::POST, format!("{url}/representations"), json!({})),
    ];
    for (method, target, body) in refused {
        let mut request = http.request(method.clone(), &target).bearer_auth(&prometheus);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {target}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "forbidden", "{method} {target}: {problem}");
    }
    // The page shows every client's computations to the monitor, and that it is one.
    let page = http
        .get(format!("{url}/"))
        .basic_auth("ops", Some(&prometheus))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("signed in as <code>prometheus</code> (monitor)"),
        "{page}"
    );
    assert!(page.contains(&id.to_string()), "{page}");
    // Metrics need a token once clients exist; every client's will do.
    let anonymous = http.get(format!("{url}/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(Client::new(&url, Some(app.clone())).metrics().await.is_ok());
    // What the monitor tried changed nothing: the app's computation still waits.
    let view = Client::new(&url, Some(app)).get(id, Duration::ZERO).await.unwrap();
    assert_eq!(view["status"], "pending", "{view}");
}
