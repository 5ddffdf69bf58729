//! Slow and numerous clients against a real node: request heads and bodies that never finish are
//! cut off after the HTTP timeouts, idle keep-alive connections are closed, a thousand held
//! connections under a 1,024-file limit leave `/healthz` reachable, slow clients that keep the
//! connection table full from many addresses hide no health check (on the health listener, nor
//! on the API's own while they use fewer addresses than its health reserve holds), and long
//! polls outlast the timeouts.
//!
//! Every loopback test client comes from 127.0.0.1 unless it binds another address: the slow
//! clients here come from 127.0.0.2 and up, so the per-address limit sees them as other hosts.

use fsc_e2e::{Cluster, ClusterOptions, NodeProcess, eventually};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use uuid::Uuid;

const PARTIAL_HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n";

fn options(env: &[(&str, &str)]) -> ClusterOptions {
    ClusterOptions {
        parties: 2,
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    }
}

fn address(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// Reads until the node closes the connection (EOF or reset); returns what it sent and when it
/// closed, or None if it still had not after `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<(String, Duration)> {
    let started = Instant::now();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(within, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    closed
        .ok()
        .map(|()| (String::from_utf8_lossy(&answer).into_owned(), started.elapsed()))
}

/// A partial request head, a connection that sends nothing, and a keep-alive connection idle
/// after one request are all closed after the header timeout.
#[tokio::test]
async fn unfinished_heads_and_idle_connections_are_closed() {
    let cluster = Cluster::start_with(options(&[("FSC_HTTP_HEADER_TIMEOUT_S", "1")])).await;
    let address = address(&cluster.nodes[0].url);

    let mut partial = TcpStream::connect(&address).await.unwrap();
    partial.write_all(PARTIAL_HEAD).await.unwrap();
    let mut silent = TcpStream::connect(&address).await.unwrap();
    let mut idle = TcpStream::connect(&address).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();

    let within = Duration::from_secs(10);
    let (partial, silent, idle) = tokio::join!(
        read_until_closed(&mut partial, within),
        read_until_closed(&mut silent, within),
        read_until_closed(&mut idle, within),
    );
    let (answer, elapsed) = partial.expect("a partial head is cut off");
    assert_eq!(answer, "", "no answer to a head that never ended");
    eprintln!("partial head closed after {elapsed:?}");
    let (_, elapsed) = silent.expect("a silent connection is closed");
    eprintln!("silent connection closed after {elapsed:?}");
    let (answer, elapsed) = idle.expect("an idle keep-alive connection is closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    eprintln!("idle keep-alive connection closed after {elapsed:?}");
}

/// A body trickled one byte a second is cut off after the body timeout with a 408.
#[tokio::test]
async fn trickled_bodies_are_cut_off() {
    let cluster = Cluster::start_with(options(&[("FSC_HTTP_BODY_TIMEOUT_S", "2")])).await;
    let address = address(&cluster.nodes[0].url);
    let body = json!({"microprotocol": "SecureSum", "parties": cluster.parties, "input": 1}).to_string();
    let stream = TcpStream::connect(&address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /v1/computations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    // The slow client: one byte a second, until the node stops listening.
    let trickle = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        for byte in body.bytes() {
            every.tick().await;
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
        }
    });

    let started = Instant::now();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        let mut buffer = [0u8; 4096];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    trickle.abort();
    assert!(closed.is_ok(), "the trickled request is still open after 15 s");
    let answer = String::from_utf8_lossy(&answer);
    eprintln!("trickled body cut off after {:?}", started.elapsed());
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
}

/// A long poll on a pending computation waits its full time although it is longer than both
/// HTTP timeouts.
#[tokio::test]
async fn long_polls_outlast_the_http_timeouts() {
    let cluster = Cluster::start_with(options(&[
        ("FSC_HTTP_HEADER_TIMEOUT_S", "1"),
        ("FSC_HTTP_BODY_TIMEOUT_S", "2"),
    ]))
    .await;
    let id = Uuid::new_v4();
    // Only alice submits: the computation stays pending.
    assert_eq!(cluster.submit_at(0, id, json!(5)).await, 202);
    let started = Instant::now();
    let view = cluster.nodes[0]
        .client()
        .get(id, Duration::from_secs(5))
        .await
        .expect("the long poll answers 200");
    let elapsed = started.elapsed();
    assert_eq!(view["status"], "pending", "{view}");
    assert!(elapsed >= Duration::from_millis(4500), "answered after {elapsed:?}");
    eprintln!("long poll answered after {elapsed:?}");
}

/// Raises this test process's own soft open-file limit: it holds more than a thousand sockets.
fn raise_own_file_limit(needed: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        assert!(
            limit.rlim_max >= needed,
            "hard open-file limit {} < {needed}",
            limit.rlim_max
        );
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
}

/// The status of `GET path` on a fresh connection from 127.0.0.1 (None: no answer within 2 s).
async fn status(address: &str, path: &str) -> Option<u16> {
    let attempt = async {
        let mut stream = TcpStream::connect(address).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        String::from_utf8_lossy(&answer).get(9..12)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
}

/// 127.0.0.`n`: on Linux all of 127/8 reaches the node's 127.0.0.1.
fn loopback(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// A connection to `address` from `from`.
async fn connect_from(from: IpAddr, address: &str) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::new(from, 0)).ok()?;
    let target: SocketAddr = address.parse().ok()?;
    tokio::time::timeout(Duration::from_secs(10), socket.connect(target))
        .await
        .ok()?
        .ok()
}

/// Under a 1,024-file limit, 1,100 connections that each hold a partial head, from ten hosts,
/// neither exhaust the node's file table nor keep `/healthz` from answering at once (from the
/// health reserve, long before the header timeout frees the table); the node keeps serving.
#[tokio::test]
async fn healthz_answers_under_a_thousand_slow_connections() {
    const SLOW: usize = 1100;
    raise_own_file_limit(SLOW as u64 + 1024);
    let cluster = Cluster::start_with(ClusterOptions {
        file_limit: Some(1024),
        ..options(&[("FSC_HTTP_HEADER_TIMEOUT_S", "10")])
    })
    .await;
    let node = &cluster.nodes[0];
    let address = address(&node.url);

    let connects = (0..SLOW).map(|i| {
        let address = address.clone();
        async move {
            let mut stream = connect_from(loopback(2 + (i % 10) as u8), &address).await?;
            // A connection refused at the limit may already be closed: it still counts as made.
            let _ = stream.write_all(PARTIAL_HEAD).await;
            Some(stream)
        }
    });
    let mut slow: Vec<TcpStream> = futures::future::join_all(connects)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(slow.len() >= 1024, "only {} slow connections made", slow.len());

    let started = Instant::now();
    let deadline = started + Duration::from_secs(5);
    let mut every = tokio::time::interval(Duration::from_millis(100));
    loop {
        every.tick().await;
        if status(&address, "/healthz").await == Some(200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/healthz unreachable for 5 s under {} slow connections\n{}",
            slow.len(),
            node.log()
        );
    }
    eprintln!(
        "/healthz answered after {:?} under {} slow connections",
        started.elapsed(),
        slow.len()
    );

    let pid = node.pid().expect("the node runs") as i32;
    // SAFETY: signal 0 only checks that the process exists.
    assert_eq!(unsafe { libc::kill(pid, 0) }, 0, "the node died");
    // No colour codes split the fields: the log is not a terminal.
    let log = node.log();
    assert!(
        log.contains("max_connections=880"),
        "the file limit did not cap connections (1,024 less 128 kept and 16 for health checks):\n{log}"
    );
    // Every slow connection was closed by the node, none is left holding a file.
    let closed = futures::future::join_all(
        slow.iter_mut()
            .map(|stream| read_until_closed(stream, Duration::from_secs(20))),
    )
    .await;
    assert!(closed.iter().all(Option::is_some), "slow connections left open");
    node.client().node().await.expect("/v1/node answers");
}

/// The address the node's health listener is bound to, as it logged it.
fn health_address(node: &NodeProcess) -> String {
    let log = node.log();
    let line = log
        .lines()
        .find(|line| line.contains("serving health checks"))
        .unwrap_or_else(|| panic!("no health listener:\n{log}"));
    let address = line
        .split("address=")
        .nth(1)
        .expect("the address")
        .split_whitespace()
        .next();
    address.expect("the address").to_string()
}

/// Slow clients on six hosts keep the API's connection table full, each reconnecting as soon as
/// the node closes it: every health check still answers at once, on the health listener and (as
/// they use too few hosts to fill its health reserve) on the API's listener; other requests find
/// no room; refused connections are counted by reason.
#[tokio::test]
async fn health_checks_answer_while_slow_clients_keep_the_table_full() {
    let cluster = Cluster::start_with(options(&[
        ("FSC_HTTP_HEADER_TIMEOUT_S", "2"),
        ("FSC_MAX_CONNECTIONS", "24"),
        ("FSC_MAX_CONNECTIONS_PER_ADDRESS", "6"),
        ("FSC_HEALTH_LISTEN", "127.0.0.1:0"),
    ]))
    .await;
    let node = &cluster.nodes[0];
    let (api, health) = (address(&node.url), health_address(node));

    // One host gets its share, no more: its seventh connection finds no room (but for health
    // checks).
    let mut share = Vec::new();
    for _ in 0..6 {
        let mut stream = connect_from(loopback(20), &api).await.expect("a connection");
        stream.write_all(PARTIAL_HEAD).await.unwrap();
        share.push(stream);
    }
    let mut seventh = connect_from(loopback(20), &api).await.expect("a connection");
    seventh
        .write_all(b"GET /v1/node HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_until_closed(&mut seventh, Duration::from_secs(10))
        .await
        .expect("the seventh is answered and closed");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("no room for more connections"), "{answer}");
    drop(share);

    // Sixteen reconnecting slow clients on each of six hosts: 96 for 24 places, 6 a host.
    let attackers: Vec<_> = (0..96)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move {
                loop {
                    let held = match connect_from(loopback(2 + (i % 6) as u8), &api).await {
                        Some(mut stream) => {
                            let _ = stream.write_all(PARTIAL_HEAD).await;
                            read_until_closed(&mut stream, Duration::from_secs(30)).await
                        }
                        None => None,
                    };
                    // Again at once after a timeout; a refused connection closes at once: do not
                    // spin on those.
                    if held.is_none_or(|(_, held)| held < Duration::from_millis(500)) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            })
        })
        .collect();
    eventually(Duration::from_secs(10), "the slow clients fill the table", || async {
        status(&api, "/v1/node").await == Some(503)
    })
    .await;

    // Three header timeouts' worth of probes: every one answered.
    let until = Instant::now() + Duration::from_secs(6);
    let mut probes = 0;
    while Instant::now() < until {
        for (address, path) in [
            (&health, "/healthz"),
            (&health, "/readyz"),
            (&api, "/healthz"),
            (&api, "/readyz"),
        ] {
            assert_eq!(
                status(address, path).await,
                Some(200),
                "{path} on {address} after {probes} probes"
            );
        }
        probes += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eventually(Duration::from_secs(10), "other requests find no room", || async {
        match reqwest::get(format!("{}/v1/node", node.url)).await {
            Ok(answer) if answer.status() == 503 => answer
                .text()
                .await
                .is_ok_and(|body| body.contains("no room for more connections")),
            _ => false,
        }
    })
    .await;
    for attacker in &attackers {
        attacker.abort();
    }

    let client = node.client();
    eventually(Duration::from_secs(10), "the API answers again", || async {
        client.node().await.is_ok()
    })
    .await;
    for reason in ["max_connections", "per_address"] {
        let refused = client
            .metric(&format!("fsc_http_connections_refused_total{{reason=\"{reason}\"}}"))
            .await
            .unwrap();
        assert!(refused > 0.0, "{reason}: {refused}");
    }
    // The health listener answers nothing else.
    assert_eq!(status(&health, "/v1/node").await, Some(404));
}
