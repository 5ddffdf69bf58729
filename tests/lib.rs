//! End-to-end fixtures: a real nats-server and real `fsc node` processes, each behind a guard
//! that kills it when dropped, in a federation written by the real `fsc federation init`, its
//! stream created by the real `fsc federation provision`.
//!
//! Ports are never fixed: a single broker picks its own (and reports it in a ports file); the
//! servers of a cluster or a leaf federation, whose configs must name each other's ports, get
//! ports the harness found free (bound on port 0, released just before `federation init`; if a
//! server then fails to start because another process took its port meanwhile, the whole
//! federation is written and started again). Every
//! node's API socket is bound here on port 0 and handed to the node process as file descriptor 3
//! (`FSC_LISTEN_FD`). The harness keeps its copy of the socket, so a node that is killed and
//! restarted serves on the same address, and connections made while it was down wait in the
//! socket's backlog. A process may keep all of these ports in one range instead ([`use_ports`],
//! `fsc-bench --port-base`). Used by the tests in `tests/` and by the `fsc-bench` binary.

use fsc_client::Client;
use fsc_tools::broker::{Broker, declare_store, find_nats_server};
pub use fsc_tools::topology::Topology;
use serde_json::{Value, json};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

pub mod postgres;

pub const PARTY_NAMES: [&str; 7] = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"];

/// The name of the i-th party of a test federation: the seven names, then `party-07`, ….
pub fn party_name(i: usize) -> String {
    PARTY_NAMES
        .get(i)
        .map_or_else(|| format!("party-{i:02}"), |name| name.to_string())
}
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The `fsc` binary: `$FSC_BIN`, or the one next to this test's target directory.
pub fn fsc_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("FSC_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let target = exe
        .ancestors()
        .find(|dir| dir.join("fsc").is_file())
        .map(|dir| dir.join("fsc"));
    target.unwrap_or_else(|| panic!("no fsc binary near {}; run `cargo build -p fsc` first", exe.display()))
}

/// One `fsc node` process.
pub struct NodeProcess {
    pub id: String,
    pub url: String,
    /// The CA the node's certificate is signed by, if it serves https.
    pub ca: Option<PathBuf>,
    config: PathBuf,
    listener: std::net::TcpListener,
    env: Vec<(String, String)>,
    /// The process's open-file limit (soft and hard), if not inherited.
    file_limit: Option<u64>,
    log: PathBuf,
    child: Option<Child>,
}

impl NodeProcess {
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("node log file");
        let fd = self.listener.as_raw_fd();
        let file_limit = self.file_limit;
        let mut command = Command::new(fsc_bin());
        command
            .args(["node", "--config"])
            .arg(&self.config)
            .env("FSC_LISTEN_FD", "3")
            .env("FSC_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file handle"))
            .stderr(log);
        // SAFETY: only async-signal-safe calls (dup2, fcntl, setrlimit, prctl) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                // A harness killed by a signal runs no drop guard: its nodes stop with it rather
                // than live on. (The signal follows the forking thread; nodes are started from
                // the runtime's long-lived threads, never from its blocking pool.)
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                if fd == 3 {
                    // dup2 onto itself would keep close-on-exec set.
                    if libc::fcntl(3, libc::F_SETFD, 0) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, 3) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                if let Some(limit) = file_limit {
                    let limit = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        self.child = Some(command.spawn().expect("start fsc node"));
    }

    pub fn client(&self) -> Client {
        Client::with_ca(&self.url, None, self.ca.as_deref()).expect("a client of the node")
    }

    /// The operator page (`GET /`) as a caller without a token sees it.
    pub async fn page(&self) -> String {
        let page = reqwest::get(format!("{}/", self.url)).await.expect("the operator page");
        page.text().await.expect("the operator page's text")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sets an environment variable (e.g. an `FSC_<KEY>` override) for the next (re)start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Removes an environment variable set by `set_env` (or the options), for the next (re)start.
    pub fn unset_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
    }

    /// Starts the node again on the same socket and store, without waiting for anything.
    pub fn respawn(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts the node again on the same socket and store, and waits until it is ready.
    pub async fn restart(&mut self) {
        self.respawn();
        self.wait_ready().await;
    }

    /// Waits until the node reports ready; panics with its log if it exits first (a node that
    /// refuses its configuration fails the test at once, not after `READY_TIMEOUT`) or is not
    /// ready within `READY_TIMEOUT`.
    pub async fn wait_ready(&mut self) {
        let started = Instant::now();
        let client = self.client();
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("{} exited ({status}) before it became ready\n{}", self.id, self.log());
            }
            if client.ready().await {
                return;
            }
            if started.elapsed() > READY_TIMEOUT {
                panic!("{} not ready within {READY_TIMEOUT:?}\n{}", self.id, self.log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then waits for the exit (at most `timeout`).
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most `timeout`) for the process to end by itself; its exit status.
    pub async fn exited(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut()?.try_wait().ok().flatten() {
                self.child = None;
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `condition` every 20 ms until it holds; panics with `what` after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "not within {timeout:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A finished command's stdout and stderr, for assertion messages.
pub fn output_text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `FSC_CLIENTS`, as a node's environment: API clients `(name, token, admin)`.
pub fn clients_env(clients: &[(&str, &str, bool)]) -> (String, String) {
    let tables: Vec<String> = clients
        .iter()
        .map(|(name, token, admin)| {
            let digest = fsc_node::keys::api_token_sha256(token);
            format!(r#"{{name = "{name}", token_sha256 = "{digest}", admin = {admin}}}"#)
        })
        .collect();
    ("FSC_CLIENTS".into(), format!("[{}]", tables.join(", ")))
}

/// A federatedsecure API session of one client at one node (raw HTTP, as the Python client).
pub struct Representations {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Representations {
    pub fn new(base: &str, token: Option<&str>) -> Representations {
        Representations {
            http: reqwest::Client::new(),
            base: base.to_string(),
            token: token.map(String::from),
        }
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (reqwest::StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).json(&body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.json().await.unwrap_or(Value::Null))
    }

    /// `root.method(**kwargs)`: the reply of the call.
    pub async fn call(&self, object: &str, method: &str, kwargs: Value) -> (reqwest::StatusCode, Value) {
        let (status, bound) = self
            .send(
                reqwest::Method::GET,
                &format!("/representation/{object}/{method}"),
                json!({}),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::OK, "{method}: {bound}");
        let bound = bound["uuid"].as_str().unwrap().to_string();
        self.send(
            reqwest::Method::PATCH,
            &format!("/representation/{bound}"),
            json!({"args": [], "kwargs": kwargs}),
        )
        .await
    }

    /// `create_task(task_id)` + `input(data)` + `start()` as the first party: the reply of `start`.
    pub async fn start_task(&self, parties: &[String], task_id: Uuid, data: Value) -> (reqwest::StatusCode, Value) {
        let (_, status, reply) = self.start_task_as(parties, 0, task_id, data).await;
        (status, reply)
    }

    /// [`Representations::start_task`] as party `myself` (an index into `parties`): the task's
    /// representation uuid and the reply of `start`.
    pub async fn start_task_as(
        &self,
        parties: &[String],
        myself: usize,
        task_id: Uuid,
        data: Value,
    ) -> (String, reqwest::StatusCode, Value) {
        let (_, simon) = self
            .send(
                reqwest::Method::POST,
                "/representations",
                json!({"kwargs": {"protocol": "Simon"}}),
            )
            .await;
        let simon = simon["uuid"].as_str().unwrap().to_string();
        let network = json!({"nodes": parties, "uuid": "n", "myself": myself});
        let (status, task) = self
            .call(
                &simon,
                "create_task",
                json!({"microprotocol": "SecureSum", "network": network, "task_id": task_id.to_string()}),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::OK, "{task}");
        let task = task["uuid"].as_str().unwrap().to_string();
        let (status, reply) = self.call(&task, "input", json!({"data": data})).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{reply}");
        let (status, reply) = self.call(&task, "start", json!({})).await;
        (task, status, reply)
    }
}

/// Options of a test federation.
#[derive(Clone, Default)]
pub struct ClusterOptions {
    pub parties: usize,
    /// Extra environment of every node, e.g. `FSC_MAX_CHUNK_BYTES`; `{id}` in a value stands
    /// for the node's party id.
    pub env: Vec<(String, String)>,
    /// Every node's open-file limit (soft and hard, so the node cannot raise it), if not the
    /// test's own.
    pub file_limit: Option<u64>,
    /// Serve the APIs over https, with certificates of a CA `federation init --tls` made
    /// (`<dir>/ca.crt`).
    pub tls: bool,
    /// The broker's layout (`federation init --topology`).
    pub topology: Topology,
    /// Appended to a single broker's `nats-server.conf` before the stream is provisioned and
    /// the nodes start (e.g. a `tls` block).
    pub broker_config: Option<String>,
    /// Appended to the operator's `admin/admin.toml` before provisioning (e.g. its TLS files).
    pub admin_config: Option<String>,
    /// Start the nodes without provisioning the stream first (and without waiting for them to
    /// be ready): they wait for the operator, as the test then plays it ([`Cluster::provision`]).
    pub unprovisioned: bool,
    /// More arguments of `fsc federation init`, e.g. `--stream-name`.
    pub init_args: Vec<String>,
    /// The roster's `[stream] max_bytes` (each party's stream), if not the default.
    pub stream_max_bytes: Option<i64>,
}

/// A broker and n nodes, in a temporary directory that is removed at the end.
pub struct Cluster {
    pub nodes: Vec<NodeProcess>,
    /// The single broker, the cluster's first server (`fsc-1`, a supercluster's `fsc-a1`), or the
    /// leaf federation's hub.
    pub broker: Broker,
    /// The cluster's other servers (`fsc-2`, `fsc-3`; a supercluster's `fsc-a2` … `fsc-b3`), or
    /// each party's leaf server (in party order).
    pub servers: Vec<Broker>,
    pub parties: Vec<String>,
    pub topology: Topology,
    pub dir: tempfile::TempDir,
}

/// The ports this process's federations listen on, if not the operating system's choice: the
/// first, how many, and the next to try.
static PORT_RANGE: Mutex<Option<(u16, u16, u16)>> = Mutex::new(None);

/// Makes every federation this process starts from now on listen (APIs and broker servers) on
/// ports `first .. first + count` only, taking the next free one each time and starting over at
/// the end: so that it runs beside other federations that keep to other ports.
pub fn use_ports(first: u16, count: u16) {
    assert!(
        count > 0 && first.checked_add(count - 1).is_some(),
        "a port range within 1..65535"
    );
    *PORT_RANGE.lock().expect("the port range") = Some((first, count, first));
}

/// A socket listening on 127.0.0.1: on the next free port of the range [`use_ports`] set, or on
/// one the operating system picks.
pub fn bind_local() -> std::net::TcpListener {
    let mut range = PORT_RANGE.lock().expect("the port range");
    let Some((first, count, next)) = range.as_mut() else {
        return std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    };
    for _ in 0..*count {
        let port = *next;
        *next = if port - *first + 1 == *count { *first } else { port + 1 };
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return listener;
        }
    }
    panic!("no free port in {first}..{}", u32::from(*first) + u32::from(*count) - 1);
}

/// `n` ports that were free a moment ago.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n).map(|_| bind_local()).collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("bound address").port())
        .collect()
}

/// `federation init` into a new directory, and the federation's broker servers started from the
/// configs it wrote: (directory, first server, the others).
fn start_brokers(
    options: &ClusterOptions,
    parties: &[String],
    urls: &[String],
) -> (tempfile::TempDir, Broker, Vec<Broker>) {
    let nats = find_nats_server().expect("nats-server (run scripts/setup)");
    let local = |port: &u16, scheme: &str| format!("{scheme}://127.0.0.1:{port}");
    let join = |ports: &[u16], scheme: &str| ports.iter().map(|p| local(p, scheme)).collect::<Vec<_>>().join(",");
    let mut attempts = 0;
    loop {
        attempts += 1;
        let dir = tempfile::Builder::new()
            .prefix("fsc-e2e-")
            .tempdir()
            .expect("temporary directory");
        // (config, port) of every server, first the one `Cluster::broker` holds.
        let (args, servers): (Vec<String>, Vec<(PathBuf, Option<u16>)>) = match options.topology {
            Topology::Single => {
                // Its own choice of port, unless the ports are kept to a range.
                let ranged = PORT_RANGE.lock().expect("the port range").is_some();
                let port = ranged.then(|| free_ports(1)[0]);
                (vec![], vec![(dir.path().join("nats-server.conf"), port)])
            }
            Topology::Cluster => {
                let ports = free_ports(6);
                let args = vec![
                    "--topology".into(),
                    "cluster".into(),
                    "--nats-url".into(),
                    join(&ports[..3], "nats"),
                    "--route-urls".into(),
                    join(&ports[3..], "nats-route"),
                ];
                let servers = (1..=3)
                    .map(|n| (dir.path().join(format!("nats-{n}.conf")), Some(ports[n - 1])))
                    .collect();
                (args, servers)
            }
            Topology::Supercluster => {
                let ports = free_ports(18);
                let args = vec![
                    "--topology".into(),
                    "supercluster".into(),
                    "--nats-url".into(),
                    join(&ports[..6], "nats"),
                    "--route-urls".into(),
                    join(&ports[6..12], "nats-route"),
                    "--gateway-urls".into(),
                    join(&ports[12..], "nats"),
                ];
                let names = ["a1", "a2", "a3", "b1", "b2", "b3"];
                let servers = names
                    .iter()
                    .zip(&ports)
                    .map(|(name, port)| (dir.path().join(format!("nats-{name}.conf")), Some(*port)))
                    .collect();
                (args, servers)
            }
            Topology::Leaf => {
                let ports = free_ports(2 + parties.len());
                let args = vec![
                    "--topology".into(),
                    "leaf".into(),
                    "--nats-url".into(),
                    local(&ports[0], "nats"),
                    "--hub-leaf-url".into(),
                    local(&ports[1], "nats-leaf"),
                    "--leaf-urls".into(),
                    join(&ports[2..], "nats"),
                ];
                let mut servers = vec![(dir.path().join("nats-server.conf"), Some(ports[0]))];
                servers.extend(
                    parties
                        .iter()
                        .zip(&ports[2..])
                        .map(|(id, port)| (dir.path().join(id).join("leaf.conf"), Some(*port))),
                );
                (args, servers)
            }
        };
        let init = Command::new(fsc_bin())
            .args(["federation", "init", "--out"])
            .arg(dir.path())
            .args(["--parties", &parties.join(","), "--api-urls", &urls.join(",")])
            .args(options.tls.then_some("--tls"))
            .args(&args)
            .args(&options.init_args)
            .output()
            .expect("run fsc federation init");
        assert!(
            init.status.success(),
            "federation init failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        for (config, _) in &servers {
            declare_store(config).expect("declare the broker's store");
        }
        let started: Result<Vec<Broker>, _> = servers
            .iter()
            .enumerate()
            .map(|(i, (config, port))| {
                // Each server's ports file and log in a directory of its own.
                let work = if i == 0 {
                    dir.path().to_path_buf()
                } else {
                    dir.path().join(format!("server-{i}"))
                };
                Broker::start_on(&nats, config, &work, *port)
            })
            .collect();
        match started {
            Ok(mut brokers) => {
                let first = brokers.remove(0);
                return (dir, first, brokers);
            }
            Err(error) if attempts < 3 => eprintln!("a broker server did not start ({error}); trying other ports"),
            Err(error) => panic!("the broker servers did not start: {error}"),
        }
    }
}

impl Cluster {
    pub async fn start(parties: usize) -> Cluster {
        Cluster::start_with(ClusterOptions {
            parties,
            ..Default::default()
        })
        .await
    }

    pub async fn start_with(options: ClusterOptions) -> Cluster {
        let parties: Vec<String> = (0..options.parties).map(party_name).collect();
        let listeners: Vec<std::net::TcpListener> = parties
            .iter()
            .map(|_| {
                let listener = bind_local();
                // std listens with a backlog of 128; a burst of connections beyond that (the
                // slow-client test's 1,100) would partly wait in the handshake, out of order.
                // SAFETY: listen(2) on a socket this function owns.
                let deepened = unsafe { libc::listen(listener.as_raw_fd(), 4096) };
                assert_eq!(deepened, 0, "listen: {}", std::io::Error::last_os_error());
                listener
            })
            .collect();
        let scheme = if options.tls { "https" } else { "http" };
        let urls: Vec<String> = listeners
            .iter()
            .map(|l| format!("{scheme}://{}", l.local_addr().expect("bound address")))
            .collect();
        let (dir, mut broker, servers) = start_brokers(&options, &parties, &urls);
        if let Some(extra) = &options.broker_config {
            append(&dir.path().join("nats-server.conf"), extra);
            broker.restart().expect("restart the broker with its new config");
        }
        if let Some(max_bytes) = options.stream_max_bytes {
            let roster = dir.path().join("federation.toml");
            let text = std::fs::read_to_string(&roster).expect("the roster");
            let default = format!(
                "max_bytes = {}\n",
                fsc_node::config::stream::StreamSpec::default().max_bytes
            );
            assert!(text.contains(&default), "init writes max_bytes: {text}");
            let text = text.replace(&default, &format!("max_bytes = {max_bytes}\n"));
            std::fs::write(&roster, text).expect("write the roster");
        }
        if let Some(extra) = &options.admin_config {
            append(&dir.path().join("admin/admin.toml"), extra);
        }
        if !options.unprovisioned {
            let provision = provision(dir.path(), &broker, &[]);
            assert!(provision.status.success(), "{}", output_text(&provision));
        }
        let mut nodes = Vec::new();
        for ((id, url), listener) in parties.iter().zip(urls).zip(listeners) {
            // A single broker's port is known once it runs; other layouts' nodes use the URLs
            // their node.toml was written with.
            let mut env = Vec::new();
            if options.topology == Topology::Single {
                env.push(("FSC_NATS_URL".to_string(), broker.url()));
            }
            env.extend(options.env.iter().map(|(k, v)| (k.clone(), v.replace("{id}", id))));
            let mut node = NodeProcess {
                id: id.clone(),
                url,
                ca: options.tls.then(|| dir.path().join("ca.crt")),
                config: dir.path().join(id).join("node.toml"),
                log: dir.path().join(format!("{id}.log")),
                listener,
                env,
                file_limit: options.file_limit,
                child: None,
            };
            node.spawn();
            nodes.push(node);
        }
        for node in nodes.iter_mut().filter(|_| !options.unprovisioned) {
            node.wait_ready().await;
        }
        Cluster {
            nodes,
            broker,
            servers,
            parties,
            topology: options.topology,
            dir,
        }
    }

    pub fn node(&self, id: &str) -> &NodeProcess {
        self.nodes.iter().find(|n| n.id == id).expect("a node of this cluster")
    }

    pub fn node_mut(&mut self, id: &str) -> &mut NodeProcess {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .expect("a node of this cluster")
    }

    /// A SecureSum submission of every party's `input` under one id.
    pub fn sum_request(&self, id: Uuid, input: Value) -> Value {
        json!({"id": id, "microprotocol": "SecureSum", "parties": self.parties, "input": input})
    }

    /// Submits `input` for computation `id` at node `party` (SecureSum); returns the HTTP status.
    pub async fn submit_at(&self, party: usize, id: Uuid, input: Value) -> u16 {
        let answer = self.nodes[party]
            .client()
            .submit(&self.sum_request(id, input))
            .await
            .expect("submit");
        answer.status.as_u16()
    }

    /// Submits `inputs[i]` at node i, all under one new id; asserts each was accepted.
    pub async fn submit_sum(&self, inputs: &[Value]) -> Uuid {
        self.submit_sum_with(inputs, Value::Null).await
    }

    /// [`Cluster::submit_sum`] with SecureSum's `parameters` (null: none).
    pub async fn submit_sum_with(&self, inputs: &[Value], parameters: Value) -> Uuid {
        let id = Uuid::new_v4();
        for (node, input) in self.nodes.iter().zip(inputs) {
            let mut request = self.sum_request(id, input.clone());
            if !parameters.is_null() {
                request["parameters"] = parameters.clone();
            }
            let answer = node.client().submit(&request).await.expect("submit");
            assert_eq!(answer.status.as_u16(), 202, "{}: {}", node.id, answer.body);
        }
        id
    }

    /// Every node's final view of computation `id`.
    pub async fn finals(&self, id: Uuid, timeout: Duration) -> Vec<Value> {
        let mut views = Vec::new();
        for node in &self.nodes {
            views.push(
                node.client()
                    .wait_final(id, timeout)
                    .await
                    .expect("read the computation"),
            );
        }
        views
    }

    /// The final view of `id` at `party`, which may not have heard of it yet (a helper that
    /// learns of it from a peer's invitation or abort): waits for that first.
    pub async fn final_at(&self, party: &str, id: Uuid, timeout: Duration) -> Value {
        let client = self.node(party).client();
        eventually(timeout, &format!("{party} hears of {id}"), || async {
            client.get(id, Duration::ZERO).await.is_ok()
        })
        .await;
        client.wait_final(id, timeout).await.expect("read the computation")
    }

    /// Dumps every node's log (for assertion messages).
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- {} ---\n{}", n.id, n.log()))
            .collect()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The broker as its operator sees it: the `admin` user of `admin/nats.nk`, connected to
    /// any server of a cluster, or to the hub.
    pub async fn admin(&self) -> async_nats::Client {
        let mut urls = vec![self.broker.url()];
        if self.topology != Topology::Leaf {
            urls.extend(self.servers.iter().map(Broker::url));
        }
        let urls: Vec<async_nats::ServerAddr> = urls.iter().map(|u| u.parse().expect("a server URL")).collect();
        self.connect_options("admin")
            .connect(urls)
            .await
            .expect("connect as the broker's admin")
    }

    /// `$JS.API.STREAM.INFO.<stream>` of the first party's stream (its inbox; every party's is
    /// alike), asked as the operator; `None` while no server answers it.
    pub async fn stream_info(&self, admin: &async_nats::Client) -> Option<Value> {
        self.stream_info_of(admin, &self.parties[0]).await
    }

    /// `$JS.API.STREAM.INFO.<stream>` of `party`'s stream, asked as the operator; `None` while no
    /// server answers it.
    pub async fn stream_info_of(&self, admin: &async_nats::Client, party: &str) -> Option<Value> {
        jetstream_api(admin, &format!("STREAM.INFO.{}", self.names().inbox_stream(party))).await
    }

    /// `$JS.API.CONSUMER.INFO.<stream>.<consumer>` of `party`'s inbox consumer, asked as the
    /// operator; `None` while no server answers it.
    pub async fn consumer_info_of(&self, admin: &async_nats::Client, party: &str) -> Option<Value> {
        let names = self.names();
        let subject = format!("CONSUMER.INFO.{}.{}", names.inbox_stream(party), names.consumer(party));
        jetstream_api(admin, &subject).await
    }

    /// Runs `fsc federation provision` on this federation, as its operator does.
    pub fn provision(&self) -> std::process::Output {
        provision(self.path(), &self.broker, &[])
    }

    /// `fsc federation provision --update`: changes a stream that differs to the spec.
    pub fn provision_update(&self) -> std::process::Output {
        provision(self.path(), &self.broker, &["--update"])
    }

    /// The federation's names on the broker (from its roster's `[stream]`).
    pub fn names(&self) -> fsc_node::config::stream::Names {
        let roster = fsc_node::config::roster::Roster::load(&self.path().join("federation.toml")).expect("the roster");
        fsc_node::config::stream::Names::new(&roster.stream)
    }

    /// How to connect as `user` (a party's id, or `admin`), with the NKey init wrote for it; a
    /// party's replies arrive under its inbox prefix, the only one it may subscribe to.
    pub fn connect_options(&self, user: &str) -> async_nats::ConnectOptions {
        let seed = std::fs::read_to_string(self.path().join(user).join("nats.nk")).expect("the user's NKey seed");
        let options = async_nats::ConnectOptions::with_nkey(seed.trim().to_string());
        if user == "admin" {
            options
        } else {
            options.custom_inbox_prefix(self.names().inbox_prefix(user))
        }
    }

    /// Appends `text` to party `id`'s node.toml: it applies from the node's next start.
    pub fn append_config(&self, id: &str, text: &str) {
        append(&self.path().join(id).join("node.toml"), text);
    }

    /// Everything `from` sent `to` for computation `id` that still waits on the broker (not yet
    /// taken by `to`'s node, e.g. while it is down), opened with `to`'s keys, in stream order.
    pub async fn waiting_on_broker(&self, id: Uuid, to: &str, from: &str) -> Vec<fsc_node::envelope::Opened> {
        let roster = fsc_node::config::roster::Roster::load(&self.path().join("federation.toml")).expect("the roster");
        let keys = fsc_node::keys::NodeKeys::load(
            &self.path().join(to).join("x25519.key"),
            &self.path().join(to).join("ed25519.key"),
        )
        .expect("the recipient's keys");
        let envelopes = fsc_node::envelope::Envelopes::new(to, keys, &roster).expect("the recipient's envelopes");
        let js = async_nats::jetstream::new(self.admin().await);
        let mut stream = js.get_stream(self.names().inbox_stream(to)).await.expect("the stream");
        let state = stream.info().await.expect("the stream's state").state.clone();
        let subject = self.names().subject(&id.to_string(), to, from);
        let mut opened = Vec::new();
        for sequence in state.first_sequence..=state.last_sequence {
            let Ok(message) = stream.get_raw_message(sequence).await else {
                continue;
            };
            if message.subject.as_str() != subject {
                continue;
            }
            let wires: Vec<&[u8]> = match message.headers.get(fsc_node::bundle::HEADER) {
                Some(count) => {
                    fsc_node::bundle::unpack(&message.payload, count.as_str()).expect("a well-formed bundle")
                }
                None => vec![&message.payload[..]],
            };
            for wire in wires {
                opened.push(
                    envelopes
                        .open(&id.to_string(), from, wire)
                        .expect("sealed for the recipient"),
                );
            }
        }
        opened
    }

    /// A broker connection as `user` ([`Cluster::connect_options`]).
    pub async fn connect_as(&self, user: &str) -> async_nats::Client {
        self.connect_options(user)
            .connect(self.broker.url())
            .await
            .expect("connect to the broker")
    }
}

/// The answer to `$JS.API.<request>` (empty payload), asked as `admin`; `None` while no server
/// answers it (within 2 s) or the answer is an error.
pub async fn jetstream_api(admin: &async_nats::Client, request: &str) -> Option<Value> {
    let subject = format!("$JS.API.{request}");
    let answer = tokio::time::timeout(Duration::from_secs(2), admin.request(subject, "".into()))
        .await
        .ok()?
        .ok()?;
    let info: Value = serde_json::from_slice(&answer.payload).ok()?;
    info.get("error").is_none().then_some(info)
}

/// Appends `text` as lines of their own to the file at `path`.
fn append(path: &Path, text: &str) {
    let before = std::fs::read_to_string(path).expect("read the file to extend");
    std::fs::write(path, format!("{before}\n{text}\n")).expect("extend the file");
}

/// `fsc federation provision DIR [flags]` against `broker`.
fn provision(dir: &Path, broker: &Broker, flags: &[&str]) -> std::process::Output {
    Command::new(fsc_bin())
        .args(["federation", "provision"])
        .arg(dir)
        .args(["--nats-url", &broker.url()])
        .args(flags)
        .output()
        .expect("run fsc federation provision")
}

/// `n` SecureSums with random integer inputs: (ids, per node the batch items, expected sums).
pub fn random_sums(cluster: &Cluster, n: usize, seed: u64) -> (Vec<Uuid>, Vec<Vec<Value>>, Vec<f64>) {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) % 2_000_001) as i64 - 1_000_000
    };
    let mut ids = Vec::with_capacity(n);
    let mut per_node = vec![Vec::with_capacity(n); cluster.nodes.len()];
    let mut sums = Vec::with_capacity(n);
    for _ in 0..n {
        let id = Uuid::new_v4();
        let mut sum = 0;
        for items in per_node.iter_mut() {
            let value = next();
            sum += value;
            items.push(cluster.sum_request(id, json!(value)));
        }
        ids.push(id);
        sums.push(sum as f64);
    }
    (ids, per_node, sums)
}

/// Asserts that every node has every computation of `ids` succeeded with the sum in `sums`.
pub async fn assert_all_summed(cluster: &Cluster, ids: &[Uuid], sums: &[f64]) {
    for node in &cluster.nodes {
        let client = node.client();
        for (id, sum) in ids.iter().zip(sums) {
            let view = client
                .wait_final(*id, Duration::from_secs(90))
                .await
                .expect("read the computation");
            assert_eq!(
                view["status"],
                "succeeded",
                "{} {id}: {view}\n{}",
                node.id,
                cluster.logs()
            );
            assert_eq!(view["output"]["result"]["sum"].as_f64(), Some(*sum), "{} {id}", node.id);
        }
    }
}

/// PSI inputs, as the engine's own timing example makes them.
pub use fsc_simon::simulate::psi_sets;
