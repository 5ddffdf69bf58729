//! What a node and the operator's tools share: a node's `node.toml` ([`NodeConfig`], overridable
//! key by key from `FSC_<KEY>` environment variables), the federation roster `federation.toml`
//! it points to ([`roster`]), the federation's stream, its spec and names ([`stream`]), how a
//! broker user logs in ([`broker`]), and the datasets the node's steward offers ([`datasets`]).
//!
//! Loading validates everything a node needs before it touches the network: unknown keys are
//! errors, party ids have the documented form, and every roster key is self-signed by its party.
//! Paths in `node.toml` are relative to the file's directory. Nothing here opens sockets or files
//! other than the two TOML files, but for [`stream::find`], the one broker request both sides
//! make. This module imports nothing of the node above [`crate::keys`] and [`crate::error`]: the
//! runtime, the transport and the tools build on it, never the reverse.

pub mod broker;
pub mod budget;
pub mod datasets;
pub mod dp_policy;
pub mod policy;
pub mod roster;
pub mod stream;

use crate::error::Error;
use broker::{BrokerLogin, nats_servers};
use datasets::DatasetConfig;
use policy::Policy;
use roster::validate_party_id;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Every key of `node.toml`; each can be overridden by the environment variable `FSC_<KEY>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's party id; must appear in the roster.
    pub id: String,
    /// The federation roster (public keys and API URLs of all parties).
    pub roster: PathBuf,
    /// Address the HTTP API listens on.
    #[serde(default = "defaults::listen")]
    pub listen: String,
    /// An already-bound listening socket inherited from the parent process (socket activation);
    /// takes precedence over `listen`.
    #[serde(default)]
    pub listen_fd: Option<i32>,
    /// The SQLite database file.
    #[serde(default = "defaults::store")]
    pub store: PathBuf,
    #[serde(default = "defaults::x25519_key")]
    pub x25519_key: PathBuf,
    #[serde(default = "defaults::ed25519_key")]
    pub ed25519_key: PathBuf,
    /// The broker, or several servers of one NATS cluster, comma-separated: the node connects to
    /// the first that answers, in the order given (list the party's nearest server first), and
    /// reconnects to another if it goes away. `tls://` URLs, or `nats_ca_file`, require TLS.
    #[serde(default = "defaults::nats_url")]
    pub nats_url: String,
    /// The NATS user's NKey seed file (the broker config lists the matching public key).
    #[serde(default = "defaults::nats_nkey")]
    pub nats_nkey: PathBuf,
    /// A NATS credentials file (`.creds`: a user JWT and its NKey seed, from an operator-mode
    /// deployment); used instead of `nats_nkey` when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_creds: Option<PathBuf>,
    /// The JetStream domain of the servers that hold the stream, when the node's own server is
    /// not one of them (a leaf server without JetStream of its own, dialling out to a hub whose
    /// JetStream has this domain): the node then calls the JetStream API as `$JS.<domain>.API`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jetstream_domain: Option<String>,
    // TLS to the broker: `nats_ca_file`, PEM CA certificates to trust for the broker's
    // certificate (besides the system's); `nats_client_cert`/`nats_client_key`, a PEM client
    // certificate and key for a broker that verifies clients (`tls { verify: true }`), both or
    // neither. Any of them makes TLS required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_ca_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_client_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_client_key: Option<PathBuf>,
    /// How long the broker waits for this node to acknowledge a message before it delivers the
    /// message again. A message whose acknowledgement was lost with a server is redelivered after
    /// this; a delivery the node has not committed by then is delivered twice (harmless: the
    /// store keeps one).
    #[serde(default = "defaults::consumer_ack_wait_ms")]
    pub consumer_ack_wait_ms: u64,
    /// While the inbox is idle, the broker signals every this many milliseconds that the pull
    /// request is alive; two missed signals make the node pull afresh (its request died with a
    /// server, or with a stream leader that moved).
    #[serde(default = "defaults::consumer_heartbeat_ms")]
    pub consumer_heartbeat_ms: u64,
    /// Each pull request of the inbox expires after this long and is renewed; at least twice the
    /// heartbeat.
    #[serde(default = "defaults::consumer_pull_expiry_ms")]
    pub consumer_pull_expiry_ms: u64,
    /// How long a published message waits for the stream's acknowledgement before it is sent
    /// again (a duplicate is dropped by the stream): bounds what a stream leader's loss costs
    /// the sender.
    #[serde(default = "defaults::publish_ack_timeout_ms")]
    pub publish_ack_timeout_ms: u64,
    /// While its inbox is pulling, the node verifies the stream again this often (and each time
    /// the broker connection comes back): one that has changed stops its messages until it is
    /// as the roster specifies again.
    #[serde(default = "defaults::stream_check_s")]
    pub stream_check_s: u64,
    /// Deadline of a computation whose submission names none.
    #[serde(default = "defaults::default_deadline_s")]
    pub default_deadline_s: u64,
    /// The longest deadline a submission may ask for; also how long messages for computations
    /// not (yet) submitted here are kept, and (plus a margin) the stream's max age.
    #[serde(default = "defaults::max_deadline_s")]
    pub max_deadline_s: u64,
    /// After its deadline, a computation every party has joined waits this much longer for its
    /// messages before this node gives up on it (`stalled`): the parties' nodes decide a
    /// deadline together, and only a node away longer than this can end differently.
    #[serde(default = "defaults::stall_grace_s")]
    pub stall_grace_s: u64,
    /// At most this many computations start on this node; new submissions beyond are refused at
    /// once with a retry hint (429), so that admission never holds up the runtime. Computations
    /// another party has started are joined all the same (they are bounded by what peers run).
    #[serde(default = "defaults::max_active_computations")]
    pub max_active_computations: usize,
    /// The largest output this node computes: cells of a frequency or contingency table, entries
    /// of a matrix product, members of an intersection. Checked from the parameters, shapes and
    /// set sizes before the output is built; beyond, the computation fails with `too_large` (a
    /// 400 at submission where the size is known then).
    #[serde(default = "defaults::max_output_cells")]
    pub max_output_cells: u64,
    /// Bytes of chunks (pieces of large messages) one peer may have waiting here for the rest of
    /// their messages; chunks beyond are dropped (and counted as rejected, `over_quota`).
    #[serde(default = "defaults::max_pending_chunk_bytes")]
    pub max_pending_chunk_bytes: u64,
    /// Bytes one peer may have stored here for computations this node's clients have not
    /// submitted (whole messages and chunks): beyond, its messages for such computations are
    /// dropped (`over_quota`). Else a peer could fill this store with computations nobody here
    /// asked for.
    #[serde(default = "defaults::max_unsolicited_bytes")]
    pub max_unsolicited_bytes: u64,
    /// How long messages for a computation no client here has submitted are kept; after, they
    /// are dropped (a client that submits later waits for its deadline).
    #[serde(default = "defaults::max_unsolicited_s")]
    pub max_unsolicited_s: u64,
    /// The parties that may invite this node to help their products (default: every roster
    /// member).
    #[serde(default)]
    pub helper_for: Option<Vec<String>>,
    /// At most this many computations run here as a helper at once; an invitation beyond (or
    /// beyond `max_active_computations`) is refused with `helper_busy`, which its parties see.
    #[serde(default = "defaults::max_helper_computations")]
    pub max_helper_computations: usize,
    /// Largest NATS message this node publishes; larger envelopes are sent in chunks. Defaults to
    /// the broker's max payload (minus room for headers).
    #[serde(default)]
    pub max_chunk_bytes: Option<usize>,
    /// Finished computations are pruned this long after they finished (`fsc gc` prunes at once);
    /// their ids are kept, so none is ever used twice.
    #[serde(default = "defaults::retention_s")]
    pub retention_s: u64,
    /// Audit entries are pruned this long after they were written; unset (the default), the
    /// audit log is kept for good. Its own setting: a data protection officer may need the log
    /// for years after the computations are gone.
    #[serde(default)]
    pub audit_retention_s: Option<u64>,
    /// The federation member that helps two-party products (SecureMatrixMultiplication,
    /// StatisticsRegressionOLSVertical) when a submission names none: it deals correlated
    /// randomness and learns only the shapes. Unset: the first roster member that is not a party.
    /// Both parties must resolve the same helper (else the computation fails as a definition
    /// mismatch), so set it alike at every node, or not at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helper: Option<String>,
    /// After SIGTERM or SIGINT, the node stops within this many seconds whatever its clients and
    /// the broker do: open requests are cut off, and what is not yet published stays in the
    /// outbox for the next start.
    #[serde(default = "defaults::shutdown_grace_s")]
    pub shutdown_grace_s: u64,
    /// Largest accepted HTTP request body.
    #[serde(default = "defaults::max_request_bytes")]
    pub max_request_bytes: usize,
    /// The most records one read of a dataset keeps (rows after filters and skipped missing
    /// values): the dataset counterpart of `max_request_bytes`, since a read's input is held in
    /// memory like a posted one (8 bytes a record for one numeric column of StatisticsUnivariate,
    /// about 100 a value for the rest). Checked as each row is read, before it is kept.
    #[serde(default = "defaults::max_dataset_records")]
    pub max_dataset_records: u64,
    /// Federatedsecure API: representations unused for this long are forgotten.
    #[serde(default = "defaults::representation_ttl_s")]
    pub representation_ttl_s: u64,
    /// Federatedsecure API: the most representations kept at once.
    #[serde(default = "defaults::max_representations")]
    pub max_representations: usize,
    /// Federatedsecure API: the most bytes of JSON held in memory at once, by representations,
    /// task inputs not yet started and Broadcast/KeyValueStorage values together. Requests that
    /// would hold more are refused (507) until some are released or expire.
    #[serde(default = "defaults::max_representation_bytes")]
    pub max_representation_bytes: usize,
    /// The most HTTP connections open at once (lowered to what the open-file limit allows);
    /// further connections are answered 503 and closed (but for a few kept to answer health
    /// checks).
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// The most HTTP connections open at once from one peer address (an IPv6 peer: its /64),
    /// so that one host cannot take them all. Behind a proxy every client has the proxy's
    /// address: raise it to `max_connections` there.
    #[serde(default = "defaults::max_connections_per_address")]
    pub max_connections_per_address: usize,
    /// An address of a listener of its own that answers `/healthz` and `/readyz` only (plain
    /// HTTP, no tokens), for monitors: it stays reachable when the API's connections are all
    /// taken. None: health checks go to the API's listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_listen: Option<String>,
    /// An HTTP request head must arrive within this time; also how long an idle keep-alive
    /// connection stays open.
    #[serde(default = "defaults::http_header_timeout_s")]
    pub http_header_timeout_s: u64,
    /// An HTTP request body must arrive within this time of its head (else 408). Long polls
    /// (`?wait=`) are not affected: they have no body.
    #[serde(default = "defaults::http_body_timeout_s")]
    pub http_body_timeout_s: u64,
    // TLS of the HTTP API (the README's "TLS"). `tls_cert`/`tls_key`: PEM certificate chain
    // and private key, both or neither. `tls_client_ca`: PEM CA certificates; clients must then
    // present a certificate one of them signed (besides their token). `allow_plain_http`: serve
    // plain HTTP on an address that is not loopback (behind a TLS-terminating proxy, or in a
    // private container network); without TLS or it, such a node refuses to start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_ca: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_plain_http: bool,
    /// The API's clients, each with its own token (stored as its SHA-256). If any is listed, every
    /// request except /healthz and /readyz needs `Authorization: Bearer <token>` (or HTTP Basic
    /// with the token as password, which the Python client sends for URLs of the form
    /// `http://fsc:<token>@host:port`). A computation belongs to the client that submitted it.
    /// With none, the API needs no token and is served on loopback only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<ApiClient>,
    /// How the node writes its log to stderr: `text` (one line per event) or `json` (one JSON
    /// object per line, for log collectors). `fsc --log-format` overrides it.
    #[serde(default, skip_serializing_if = "LogFormat::is_text")]
    pub log_format: LogFormat,
    /// The disclosure-control policy (`[policy]`; README, "Disclosure control"): which
    /// computations this node lends its data to. Absent: every computation its clients submit.
    /// No `FSC_POLICY` override: a policy is written down, in the file.
    #[serde(default, skip_serializing_if = "Policy::is_open")]
    pub policy: Policy,
    /// The datasets inputs may name instead of carrying values (`[[datasets]]`; README,
    /// "Datasets"). No `FSC_DATASETS` override, as for the policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<DatasetConfig>,
}

/// The log's format (`log_format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    fn is_text(&self) -> bool {
        *self == LogFormat::Text
    }
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<LogFormat, String> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("log format {other:?} is neither \"text\" nor \"json\"")),
        }
    }
}

/// The name of the one API client of a node that lists none (`caller::Caller::LOCAL`).
pub const LOCAL_CLIENT: &str = "local";

/// One client of the HTTP API (`[[clients]]` in node.toml; `fsc client add` writes one).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiClient {
    /// Who the client is; computations it submits belong to it. `[a-z0-9._-]{1,64}`.
    pub name: String,
    /// SHA-256 of the client's token, hex: the node never stores the token itself.
    pub token_sha256: String,
    /// An admin client reads, lists and cancels every client's computations.
    #[serde(default)]
    pub admin: bool,
    /// A monitoring client (Prometheus, dashboards) reads `/metrics` and the operator page (every
    /// computation, no actions), as `/readyz` and `/healthz`, which need no token; nothing else.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub monitor: bool,
    /// The datasets (`"labs"`: every column) and single columns (`"labs.hba1c"`) this client's
    /// inputs may name; none by default. A node without clients lets its local client name all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<String>,
}

/// The defaults of node.toml's keys, for serde and for the tools that write node.toml.
pub mod defaults {
    use std::path::PathBuf;
    pub fn listen() -> String {
        "127.0.0.1:55501".into()
    }
    pub fn store() -> PathBuf {
        "fsc.sqlite".into()
    }
    pub fn x25519_key() -> PathBuf {
        "x25519.key".into()
    }
    pub fn ed25519_key() -> PathBuf {
        "ed25519.key".into()
    }
    pub fn nats_url() -> String {
        "nats://127.0.0.1:4222".into()
    }
    pub fn nats_nkey() -> PathBuf {
        "nats.nk".into()
    }
    // A lost server costs at most about this long: a dead pull request is noticed after two
    // heartbeats (2 s) and renewed, a lost acknowledgement is redelivered after the ack wait, an
    // unacknowledged publish is re-sent after 2 s.
    pub fn consumer_ack_wait_ms() -> u64 {
        5000
    }
    pub fn consumer_heartbeat_ms() -> u64 {
        1000
    }
    pub fn consumer_pull_expiry_ms() -> u64 {
        5000
    }
    pub fn publish_ack_timeout_ms() -> u64 {
        2000
    }
    pub fn stream_check_s() -> u64 {
        60
    }
    pub fn default_deadline_s() -> u64 {
        600
    }
    pub fn max_deadline_s() -> u64 {
        3600
    }
    pub fn max_pending_chunk_bytes() -> u64 {
        256 * 1024 * 1024
    }
    pub fn retention_s() -> u64 {
        30 * 24 * 3600
    }
    pub fn shutdown_grace_s() -> u64 {
        10
    }
    pub fn max_request_bytes() -> usize {
        32 * 1024 * 1024
    }
    pub fn max_dataset_records() -> u64 {
        20_000_000
    }
    pub fn max_active_computations() -> usize {
        5000
    }
    pub fn stall_grace_s() -> u64 {
        300
    }
    pub fn max_unsolicited_bytes() -> u64 {
        256 * 1024 * 1024
    }
    pub fn max_unsolicited_s() -> u64 {
        600
    }
    pub fn max_helper_computations() -> usize {
        1000
    }
    pub fn max_output_cells() -> u64 {
        fsc_simon::Limits::default().max_output_cells
    }
    pub fn representation_ttl_s() -> u64 {
        3600
    }
    pub fn max_representations() -> usize {
        100_000
    }
    pub fn max_connections() -> usize {
        1024
    }
    pub fn max_connections_per_address() -> usize {
        128
    }
    pub fn http_header_timeout_s() -> u64 {
        10
    }
    pub fn http_body_timeout_s() -> u64 {
        60
    }
    pub fn max_representation_bytes() -> usize {
        256 * 1024 * 1024
    }
}

const KEYS: &[&str] = &[
    "id",
    "roster",
    "listen",
    "listen_fd",
    "store",
    "x25519_key",
    "ed25519_key",
    "nats_url",
    "nats_nkey",
    "nats_creds",
    "jetstream_domain",
    "nats_ca_file",
    "nats_client_cert",
    "nats_client_key",
    "consumer_ack_wait_ms",
    "consumer_heartbeat_ms",
    "consumer_pull_expiry_ms",
    "publish_ack_timeout_ms",
    "stream_check_s",
    "default_deadline_s",
    "max_deadline_s",
    "max_active_computations",
    "max_output_cells",
    "stall_grace_s",
    "max_pending_chunk_bytes",
    "max_unsolicited_bytes",
    "max_unsolicited_s",
    "helper_for",
    "max_helper_computations",
    "max_chunk_bytes",
    "retention_s",
    "audit_retention_s",
    "helper",
    "shutdown_grace_s",
    "max_request_bytes",
    "max_dataset_records",
    "representation_ttl_s",
    "max_representations",
    "max_representation_bytes",
    "clients",
    "max_connections",
    "max_connections_per_address",
    "health_listen",
    "http_header_timeout_s",
    "http_body_timeout_s",
    "tls_cert",
    "tls_key",
    "tls_client_ca",
    "allow_plain_http",
    "log_format",
];

impl NodeConfig {
    /// Reads `path`, applies `FSC_<KEY>` overrides from `env`, resolves relative paths against
    /// the file's directory and checks the values.
    pub fn load(path: &Path, env: impl Fn(&str) -> Option<String>) -> Result<NodeConfig, Error> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        let mut table: toml::Table =
            toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        if table.contains_key("api_token") {
            return Err(Error::Config(format!(
                "{}: api_token is replaced by named API clients whose tokens are stored hashed: \
                 `fsc client add --config {} --name NAME` adds one; remove api_token",
                path.display(),
                path.display()
            )));
        }
        for key in KEYS {
            if let Some(value) = env(&format!("FSC_{}", key.to_uppercase())) {
                table.insert(key.to_string(), parse_override(&value));
            }
        }
        let mut config: NodeConfig = table
            .try_into()
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let optional = [
            &mut config.tls_cert,
            &mut config.tls_key,
            &mut config.tls_client_ca,
            &mut config.nats_creds,
            &mut config.nats_ca_file,
            &mut config.nats_client_cert,
            &mut config.nats_client_key,
        ];
        let files = [
            &mut config.roster,
            &mut config.store,
            &mut config.x25519_key,
            &mut config.ed25519_key,
            &mut config.nats_nkey,
        ];
        for file in files.into_iter().chain(optional.into_iter().flatten()) {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        for dataset in &mut config.datasets {
            dataset.resolve_paths(base);
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), Error> {
        validate_party_id(&self.id)?;
        self.nats_servers()?;
        if self.default_deadline_s == 0 || self.default_deadline_s > self.max_deadline_s {
            return Err(Error::Config(format!(
                "default_deadline_s must be between 1 and max_deadline_s ({}), got {}",
                self.max_deadline_s, self.default_deadline_s
            )));
        }
        if self.max_chunk_bytes.is_some_and(|b| b < 64) {
            return Err(Error::Config("max_chunk_bytes must be at least 64".into()));
        }
        let mut names = std::collections::HashSet::new();
        let mut digests = std::collections::HashSet::new();
        for client in &self.clients {
            let name_ok = (1..=64).contains(&client.name.len())
                && client
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
            if !name_ok {
                return Err(Error::Config(format!(
                    "client name {:?} must match [a-z0-9._-]{{1,64}}",
                    client.name
                )));
            }
            if !names.insert(client.name.as_str()) {
                return Err(Error::Config(format!("client {:?} is listed twice", client.name)));
            }
            let digest_ok =
                client.token_sha256.len() == 64 && client.token_sha256.bytes().all(|b| b.is_ascii_hexdigit());
            if !digest_ok {
                return Err(Error::Config(format!(
                    "client {:?}: token_sha256 must be 64 hex digits (`fsc client add` writes it)",
                    client.name
                )));
            }
            if client.admin && client.monitor {
                return Err(Error::Config(format!(
                    "client {:?} is both admin and monitor: a monitoring client may only read",
                    client.name
                )));
            }
            if !digests.insert(client.token_sha256.to_ascii_lowercase()) {
                return Err(Error::Config(format!(
                    "client {:?} has the token of another client",
                    client.name
                )));
            }
        }
        if self.max_unsolicited_s == 0 || self.max_helper_computations == 0 || self.stall_grace_s == 0 {
            return Err(Error::Config(
                "max_unsolicited_s, max_helper_computations and stall_grace_s must be at least 1".into(),
            ));
        }
        for party in self.helper_for.iter().flatten() {
            validate_party_id(party)?;
        }
        if let Some(helper) = &self.helper {
            validate_party_id(helper)?;
        }
        let client_names: Vec<&str> = if self.clients.is_empty() {
            vec![LOCAL_CLIENT]
        } else {
            self.clients.iter().map(|c| c.name.as_str()).collect()
        };
        self.policy.validate(&client_names, validate_party_id)?;
        let grants: Vec<(&str, &[String])> = self
            .clients
            .iter()
            .map(|c| (c.name.as_str(), &c.datasets[..]))
            .collect();
        datasets::validate(&self.datasets, &grants)?;
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(Error::Config(
                "tls_cert and tls_key go together: set both or neither".into(),
            ));
        }
        if self.tls_client_ca.is_some() && self.tls_cert.is_none() {
            return Err(Error::Config("tls_client_ca needs tls_cert and tls_key".into()));
        }
        self.broker_login().validate().map_err(Error::Config)?;
        if self.consumer_ack_wait_ms < 1000 || self.consumer_heartbeat_ms < 100 || self.publish_ack_timeout_ms < 100 {
            return Err(Error::Config(
                "consumer_ack_wait_ms must be at least 1000, consumer_heartbeat_ms and publish_ack_timeout_ms at least 100"
                    .into(),
            ));
        }
        // The broker refuses a pull request whose heartbeat exceeds half its expiry.
        if self.consumer_pull_expiry_ms < 2 * self.consumer_heartbeat_ms {
            return Err(Error::Config(format!(
                "consumer_pull_expiry_ms ({}) must be at least twice consumer_heartbeat_ms ({})",
                self.consumer_pull_expiry_ms, self.consumer_heartbeat_ms
            )));
        }
        if self.stream_check_s == 0 {
            return Err(Error::Config("stream_check_s must be at least 1".into()));
        }
        if self.retention_s == 0 {
            return Err(Error::Config("retention_s must be at least 1".into()));
        }
        if self.audit_retention_s == Some(0) {
            return Err(Error::Config(
                "audit_retention_s must be at least 1 (leave it out to keep the audit log for good)".into(),
            ));
        }
        if self.shutdown_grace_s == 0 || self.shutdown_grace_s > 3600 {
            return Err(Error::Config(format!(
                "shutdown_grace_s must be between 1 and 3600, got {}",
                self.shutdown_grace_s
            )));
        }
        if self.max_request_bytes < 1024 {
            return Err(Error::Config("max_request_bytes must be at least 1024".into()));
        }
        if self.max_connections == 0 || self.max_connections_per_address == 0 {
            return Err(Error::Config(
                "max_connections and max_connections_per_address must be at least 1".into(),
            ));
        }
        if self.http_header_timeout_s == 0 || self.http_body_timeout_s == 0 {
            return Err(Error::Config(
                "http_header_timeout_s and http_body_timeout_s must be at least 1".into(),
            ));
        }
        // Less could not hold one Broadcast message or stored value of the largest size (1 MiB).
        if self.max_representation_bytes < 1024 * 1024 {
            return Err(Error::Config(
                "max_representation_bytes must be at least 1048576 (1 MiB)".into(),
            ));
        }
        Ok(())
    }
}

/// An override is read as a TOML value (`600`, `true`, `"x"`), else taken as a plain string.
fn parse_override(value: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()))
}

impl NodeConfig {
    /// How this node logs in to the broker and calls its JetStream API.
    pub fn broker_login(&self) -> BrokerLogin<'_> {
        BrokerLogin {
            nkey: &self.nats_nkey,
            creds: self.nats_creds.as_deref(),
            ca_file: self.nats_ca_file.as_deref(),
            client_cert: self.nats_client_cert.as_deref(),
            client_key: self.nats_client_key.as_deref(),
            jetstream_domain: self.jetstream_domain.as_deref(),
        }
    }

    /// The servers `nats_url` lists.
    pub fn nats_servers(&self) -> Result<Vec<async_nats::ServerAddr>, Error> {
        nats_servers(&self.nats_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_representation_budget_defaults_to_256_mib_and_has_a_floor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "id = \"alice\"\nroster = \"federation.toml\"\n").unwrap();
        let config = NodeConfig::load(&path, |_| None).unwrap();
        assert_eq!(config.max_representation_bytes, 256 * 1024 * 1024);
        let budget = |value: &'static str| {
            NodeConfig::load(&path, move |key| {
                (key == "FSC_MAX_REPRESENTATION_BYTES").then(|| value.to_string())
            })
        };
        assert_eq!(budget("67108864").unwrap().max_representation_bytes, 64 * 1024 * 1024);
        assert!(matches!(budget("1000"), Err(Error::Config(_))));
    }

    #[test]
    fn the_old_api_token_key_says_what_replaced_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "id = \"alice\"\nroster = \"federation.toml\"\napi_token = \"s3cret\"\n",
        )
        .unwrap();
        let error = NodeConfig::load(&path, |_| None).unwrap_err().to_string();
        assert!(error.contains("fsc client add"), "{error}");
    }

    #[test]
    fn nats_url_lists_the_servers_of_a_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "id = \"alice\"\nroster = \"federation.toml\"\n").unwrap();
        let load =
            |urls: &'static str| NodeConfig::load(&path, move |key| (key == "FSC_NATS_URL").then(|| urls.into()));
        let servers = load("nats://a.example:4222, tls://b.example:4443,nats://c.example")
            .unwrap()
            .nats_servers()
            .unwrap();
        let hosts: Vec<(String, u16)> = servers.iter().map(|s| (s.host().to_string(), s.port())).collect();
        assert_eq!(
            hosts,
            [
                ("a.example".into(), 4222),
                ("b.example".into(), 4443),
                ("c.example".into(), 4222)
            ]
        );
        for bad in [" , ", "nats://a.example:4222,http://[oops"] {
            let error = load(bad).unwrap_err().to_string();
            assert!(error.contains("nats_url"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn broker_settings_are_checked_and_paths_resolved_beside_node_toml() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "id = \"alice\"\nroster = \"federation.toml\"\n").unwrap();
        let load = |pairs: &'static [(&'static str, &'static str)]| {
            NodeConfig::load(&path, move |key| {
                pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string())
            })
        };
        let config = load(&[]).unwrap();
        assert_eq!(config.broker_login().api_prefix(), "$JS.API");
        assert!(!config.broker_login().tls());
        assert_eq!(
            (
                config.consumer_ack_wait_ms,
                config.consumer_heartbeat_ms,
                config.consumer_pull_expiry_ms
            ),
            (5000, 1000, 5000)
        );
        let config = load(&[
            ("FSC_JETSTREAM_DOMAIN", "hub"),
            ("FSC_NATS_CA_FILE", "ca.crt"),
            ("FSC_NATS_CREDS", "alice.creds"),
        ])
        .unwrap();
        assert_eq!(config.broker_login().api_prefix(), "$JS.hub.API");
        assert!(config.broker_login().tls());
        assert_eq!(config.nats_ca_file, Some(dir.path().join("ca.crt")));
        assert_eq!(config.nats_creds, Some(dir.path().join("alice.creds")));
        for (bad, field) in [
            (&[("FSC_NATS_CLIENT_CERT", "c.pem")][..], "nats_client_key"),
            (&[("FSC_JETSTREAM_DOMAIN", "a.b")][..], "jetstream_domain"),
            (
                &[("FSC_CONSUMER_PULL_EXPIRY_MS", "1500")][..],
                "consumer_pull_expiry_ms",
            ),
        ] {
            let error = load(bad).unwrap_err().to_string();
            assert!(error.contains(field), "{bad:?}: {error}");
        }
    }
}
