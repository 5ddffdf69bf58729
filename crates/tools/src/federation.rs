//! `fsc federation init`: everything a new federation needs, written to one directory.
//!
//! - `federation.toml`: the roster (ids, self-signed public keys, API URLs), to give every party;
//! - `<id>/node.toml` and `<id>/{x25519.key, ed25519.key, nats.nk}` (mode 0600): each party's node,
//!   and `<id>/api.token` (0600), the token of an admin API client, if its API URL is not on
//!   loopback (a node without API clients serves on loopback only);
//! - with `--tls`: `ca.crt` and `ca.key` (0600), a private CA for a test federation, and
//!   `<id>/tls.crt`, `<id>/tls.key` (0600), each party's certificate for its API host;
//! - the broker's configs (`topology`): `nats-server.conf` (one server, or the hub of a `leaf`
//!   federation), `nats-1.conf`…`nats-3.conf` (a `cluster`), `nats-a1.conf`…`nats-b3.conf` (a
//!   `supercluster`), `<id>/leaf.conf` (each party's leaf server), with JetStream and one NKey
//!   user per party ([`broker_users`]): a party publishes only as itself to the other parties of
//!   the roster, reads only its own inbox, and can neither create, change nor inspect the stream
//!   in detail;
//! - `admin/nats.nk` and `admin/admin.toml`: the operator's unrestricted broker user and where it
//!   reaches the broker (the cluster's servers, or the hub), for `fsc federation provision`
//!   (which creates the stream) and inspection.
//!
//! This module writes files; it never starts anything.

use crate::ca::Authority;
use crate::error::Error;
use crate::secrets::write_secret;
use crate::topology::{Layout, Topology, Users};
use fsc_node::config::broker::{BrokerLogin, api_prefix};
use fsc_node::config::roster::{Roster, RosterParty, validate_party_id};
use fsc_node::config::stream::{Names, StreamSpec};
use fsc_node::config::{ApiClient, NodeConfig, defaults};
use fsc_node::keys::{self, NodeKeys};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `admin/admin.toml`: how the operator reaches the broker. Paths are relative to this file's
/// directory; the broker settings mean what they mean in node.toml.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// The broker's URL(s), comma-separated.
    pub nats_url: String,
    /// The admin user's NKey seed.
    pub nats_nkey: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_creds: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_ca_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_client_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_client_key: Option<PathBuf>,
    /// The JetStream domain of the stream's servers, when the operator reaches them through a
    /// leaf server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jetstream_domain: Option<String>,
}

impl AdminConfig {
    /// `DIR/admin/admin.toml` of a federation directory, its key path resolved.
    pub fn load(federation: &Path) -> Result<AdminConfig, Error> {
        let dir = federation.join("admin");
        let path = dir.join("admin.toml");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        let mut config: AdminConfig =
            toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        config.nats_nkey = dir.join(&config.nats_nkey);
        for path in [
            &mut config.nats_creds,
            &mut config.nats_ca_file,
            &mut config.nats_client_cert,
            &mut config.nats_client_key,
        ]
        .into_iter()
        .flatten()
        {
            *path = dir.join(&*path);
        }
        config
            .broker_login()
            .validate()
            .map_err(|why| Error::Config(format!("{}: {why}", path.display())))?;
        Ok(config)
    }

    /// How the operator logs in to the broker and calls its JetStream API.
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
}

/// What to create.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub out: PathBuf,
    pub parties: Vec<String>,
    pub nats_url: String,
    /// API base URL of each party, in `parties` order.
    pub api_urls: Vec<String>,
    /// Generate a private CA (`ca.crt`, `ca.key`) and a certificate for every party's API host
    /// (`<id>/tls.crt`, `<id>/tls.key`); the API URLs must then be https.
    pub tls: bool,
    /// The broker's layout; `nats_url` names its servers (see [`Layout::new`]).
    pub broker: BrokerOptions,
    /// The roster's `[stream]`: the broker permissions follow its names.
    pub stream: StreamSpec,
}

/// The broker's layout and the addresses only some layouts have.
#[derive(Debug, Clone, Default)]
pub struct BrokerOptions {
    pub topology: Topology,
    /// `cluster`, `supercluster`: each server's route URL (`nats-route://host:port`).
    pub route_urls: Vec<String>,
    /// `supercluster`: each server's gateway URL (`nats://host:port`).
    pub gateway_urls: Vec<String>,
    /// `leaf`: the hub's leafnode URL (`nats-leaf://host:port`).
    pub hub_leaf_url: Option<String>,
    /// `leaf`: each party's leaf server's client URL, in party order.
    pub leaf_urls: Vec<String>,
}

impl InitOptions {
    /// API URLs `http://127.0.0.1:<base + i>` (https with `tls`).
    pub fn local_api_urls(base: u16, parties: usize, tls: bool) -> Result<Vec<String>, Error> {
        let scheme = if tls { "https" } else { "http" };
        (0..parties)
            .map(|i| {
                u16::try_from(i)
                    .ok()
                    .and_then(|i| base.checked_add(i))
                    .map(|port| format!("{scheme}://127.0.0.1:{port}"))
                    .ok_or_else(|| Error::Config("api port out of range".into()))
            })
            .collect()
    }
}

/// Writes a new federation into `options.out` (which must not hold one already). Returns the
/// broker's server configs it wrote, relative to `options.out`.
pub fn init(options: &InitOptions) -> Result<Vec<String>, Error> {
    if options.parties.len() < 2 {
        return Err(Error::Config("a federation needs at least two parties".into()));
    }
    if options.api_urls.len() != options.parties.len() {
        return Err(Error::Config(format!(
            "{} API URLs given for {} parties",
            options.api_urls.len(),
            options.parties.len()
        )));
    }
    let mut unique = std::collections::HashSet::new();
    for id in &options.parties {
        validate_party_id(id)?;
        if id == "admin" {
            return Err(Error::Config(
                "\"admin\" is reserved for the broker's operator user".into(),
            ));
        }
        if !unique.insert(id) {
            return Err(Error::Config(format!("party {id:?} is listed twice")));
        }
    }
    let layout = Layout::new(
        options.broker.topology,
        &options.nats_url,
        &options.broker.route_urls,
        &options.broker.gateway_urls,
        options.broker.hub_leaf_url.as_deref(),
        &options.broker.leaf_urls,
        options.parties.len(),
    )?;
    options.stream.validate()?;
    let out = absolute(&options.out)?;
    if out.join("federation.toml").exists() {
        return Err(Error::Config(format!("{} already holds a federation", out.display())));
    }
    let endpoints = options
        .api_urls
        .iter()
        .map(|url| ApiEndpoint::parse(url))
        .collect::<Result<Vec<_>, _>>()?;
    if options.tls {
        if let Some(plain) = endpoints.iter().position(|e| !e.https) {
            return Err(Error::Config(format!(
                "--tls makes certificates for https API URLs; {:?} is not one",
                options.api_urls[plain]
            )));
        }
    }
    std::fs::create_dir_all(&out)?;
    let authority = if options.tls {
        let authority = Authority::new("fsc federation CA")?;
        authority.write(&out.join("ca.crt"), &out.join("ca.key"))?;
        Some(authority)
    } else {
        None
    };

    // A replicated layout asks for as many copies as it has servers, where it wants them.
    let mut stream = options.stream.clone();
    stream.replicas = stream.replicas.max(layout.replicas());
    if stream.placement_tags.is_empty() {
        stream.placement_tags = layout.placement_tags();
    }
    let mut roster = Roster {
        stream,
        parties: Vec::new(),
    };
    let mut nkeys = Vec::new();
    let mut seeds = Vec::new();
    for (index, ((id, api_url), endpoint)) in options
        .parties
        .iter()
        .zip(&options.api_urls)
        .zip(&endpoints)
        .enumerate()
    {
        let dir = out.join(id);
        std::fs::create_dir_all(&dir)?;
        let (node_keys, files) = NodeKeys::generate()?;
        write_secret(&dir.join("x25519.key"), &files.x25519)?;
        write_secret(&dir.join("ed25519.key"), &files.ed25519)?;
        let nkey = nkeys::KeyPair::new_user();
        let seed = nkey.seed().map_err(|e| Error::Crypto(e.to_string()))?;
        write_secret(&dir.join("nats.nk"), &seed)?;
        seeds.push((id.clone(), seed));
        nkeys.push((id.clone(), nkey.public_key()));
        roster
            .parties
            .push(RosterParty::new(id, &node_keys, vec![api_url.clone()]));
        let listen = endpoint.listen_address();
        if let Some(authority) = &authority {
            authority.issue_server(&endpoint.host, &dir.join("tls.crt"), &dir.join("tls.key"))?;
        }
        // An https URL serves TLS from `tls.crt`/`tls.key` beside node.toml (`--tls` wrote them;
        // otherwise the party puts its certificate there). An http URL beyond loopback says
        // plainly that the API is to be served in clear (a proxy or private network protects it).
        let (tls_cert, tls_key) = if endpoint.https {
            (Some("tls.crt".into()), Some("tls.key".into()))
        } else {
            (None, None)
        };
        let allow_plain_http = !endpoint.https && !is_loopback(&listen);
        // A node serving beyond loopback needs a client token (without one it would keep to
        // loopback): give it an admin client, its token in a 0600 file for the party's operator.
        let mut clients = Vec::new();
        if !is_loopback(&listen) {
            let (token, token_sha256) = keys::new_api_token()?;
            write_secret(&dir.join("api.token"), &token)?;
            clients.push(ApiClient {
                name: "admin".into(),
                token_sha256,
                admin: true,
                monitor: false,
                datasets: Vec::new(),
            });
        }
        let broker = layout.node(index);
        let config = NodeConfig {
            id: id.clone(),
            roster: "../federation.toml".into(),
            listen,
            listen_fd: None,
            store: "fsc.sqlite".into(),
            x25519_key: "x25519.key".into(),
            ed25519_key: "ed25519.key".into(),
            nats_url: broker.nats_url,
            nats_nkey: "nats.nk".into(),
            nats_creds: None,
            jetstream_domain: broker.jetstream_domain,
            nats_ca_file: None,
            nats_client_cert: None,
            nats_client_key: None,
            consumer_ack_wait_ms: defaults::consumer_ack_wait_ms(),
            consumer_heartbeat_ms: defaults::consumer_heartbeat_ms(),
            consumer_pull_expiry_ms: defaults::consumer_pull_expiry_ms(),
            publish_ack_timeout_ms: defaults::publish_ack_timeout_ms(),
            stream_check_s: defaults::stream_check_s(),
            default_deadline_s: 600,
            max_deadline_s: 3600,
            max_active_computations: 5000,
            max_output_cells: defaults::max_output_cells(),
            stall_grace_s: defaults::stall_grace_s(),
            max_pending_chunk_bytes: 256 * 1024 * 1024,
            max_unsolicited_bytes: defaults::max_unsolicited_bytes(),
            max_unsolicited_s: defaults::max_unsolicited_s(),
            helper_for: None,
            max_helper_computations: defaults::max_helper_computations(),
            max_chunk_bytes: None,
            retention_s: 30 * 24 * 3600,
            audit_retention_s: None,
            helper: None,
            shutdown_grace_s: 10,
            max_request_bytes: 32 * 1024 * 1024,
            max_dataset_records: defaults::max_dataset_records(),
            representation_ttl_s: 3600,
            max_representations: 100_000,
            max_representation_bytes: 256 * 1024 * 1024,
            max_connections: 1024,
            max_connections_per_address: defaults::max_connections_per_address(),
            health_listen: None,
            http_header_timeout_s: 10,
            http_body_timeout_s: 60,
            tls_cert,
            tls_key,
            tls_client_ca: None,
            allow_plain_http,
            clients,
            log_format: Default::default(),
            policy: Default::default(),
            datasets: Vec::new(),
        };
        let text = toml::to_string(&config).map_err(|e| Error::Config(e.to_string()))?;
        std::fs::write(
            dir.join("node.toml"),
            format!(
                "# fsc node {id}: `fsc node --config {id}/node.toml`. Relative paths are relative to \
                 this file's directory,\n# so the federation's directory can be moved or copied.\n{text}"
            ),
        )?;
    }

    let admin = nkeys::KeyPair::new_user();
    std::fs::create_dir_all(out.join("admin"))?;
    write_secret(
        &out.join("admin/nats.nk"),
        &admin.seed().map_err(|e| Error::Crypto(e.to_string()))?,
    )?;
    let admin_config = AdminConfig {
        nats_url: options.nats_url.clone(),
        nats_nkey: "nats.nk".into(),
        nats_creds: None,
        nats_ca_file: None,
        nats_client_cert: None,
        nats_client_key: None,
        jetstream_domain: None,
    };
    std::fs::write(
        out.join("admin/admin.toml"),
        format!(
            "# The operator's broker connection, for `fsc federation provision DIR`.\n{}",
            toml::to_string(&admin_config).map_err(|e| Error::Config(e.to_string()))?
        ),
    )?;
    let users = BrokerUsers {
        parties: nkeys,
        admin: admin.public_key(),
        names: Names::new(&roster.stream),
    };

    let roster_text = toml::to_string(&roster).map_err(|e| Error::Config(e.to_string()))?;
    std::fs::write(
        out.join("federation.toml"),
        format!("# fsc federation roster: give this file to every party; it pins their public keys.\n{roster_text}"),
    )?;
    let (route_password, _) = keys::new_api_token()?;
    let mut servers = Vec::new();
    for file in layout.files(&users, &seeds, &route_password)? {
        let path = out.join(&file.path);
        if file.secret {
            write_secret(&path, &file.text)?;
        } else {
            std::fs::write(&path, &file.text)?;
        }
        servers.push(file.path);
    }
    Ok(servers)
}

fn is_loopback(listen: &str) -> bool {
    listen
        .rsplit_once(':')
        .and_then(|(host, _)| host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().ok())
        .is_some_and(|ip| ip.is_loopback())
}

/// `fsc client add`: appends a new API client to the node.toml at `path` and returns its token,
/// which is stored nowhere (node.toml keeps its SHA-256). `admin` and `monitor` are the client's
/// role (`ApiClient`); a config that asks for both does not load, and is not written.
pub fn add_client(path: &Path, name: &str, admin: bool, monitor: bool) -> Result<String, Error> {
    let config = NodeConfig::load(path, |_| None)?;
    if config.clients.iter().any(|c| c.name == name) {
        return Err(Error::Config(format!(
            "{} already has a client {name:?}",
            path.display()
        )));
    }
    let (token, token_sha256) = keys::new_api_token()?;
    let client = ApiClient {
        name: name.to_string(),
        token_sha256,
        admin,
        monitor,
        datasets: Vec::new(),
    };
    let table = toml::to_string(&client).map_err(|e| Error::Config(e.to_string()))?;
    let mut text = std::fs::read_to_string(path)?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("\n[[clients]]\n{table}"));
    // Checked before it is written: a config that no longer loads must not replace one that did.
    let check = tempfile::NamedTempFile::new_in(path.parent().unwrap_or(Path::new(".")))?;
    std::fs::write(check.path(), &text)?;
    NodeConfig::load(check.path(), |_| None)?;
    check.persist(path).map_err(|e| Error::Io(e.error))?;
    Ok(token)
}

/// Where a party's API is reachable, from its URL: `http(s)://host[:port][/...]`, the port 80
/// or 443 by default.
struct ApiEndpoint {
    https: bool,
    host: String,
    port: u16,
}

impl ApiEndpoint {
    fn parse(url: &str) -> Result<ApiEndpoint, Error> {
        let bad = || {
            Error::Config(format!(
                "API URL {url:?} must look like https://host[:port] or http://host:port"
            ))
        };
        let (https, rest) = match url.split_once("://") {
            Some(("https", rest)) => (true, rest),
            Some(("http", rest)) => (false, rest),
            _ => return Err(bad()),
        };
        let authority = rest.split('/').next().unwrap_or_default();
        // `[v6 address]:port`, `host:port`, or either without a port.
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (host, Some(port.parse::<u16>().map_err(|_| bad())?)),
            _ => (authority, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        let port = port.unwrap_or(if https { 443 } else { 80 });
        Ok(ApiEndpoint {
            https,
            host: host.to_string(),
            port,
        })
    }

    /// A node listens where its API URL points: loopback as given, a host name on all interfaces.
    fn listen_address(&self) -> String {
        match self.host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(ip)) => format!("[{ip}]:{}", self.port),
            Ok(ip) => format!("{ip}:{}", self.port),
            Err(_) => format!("0.0.0.0:{}", self.port),
        }
    }
}

/// The `users` of the broker's `authorization` block: one NKey user per party `(id, public key)`
/// and the operator's `admin`, for the JetStream API of the stream's servers (`$JS.API`, or
/// `$JS.<domain>.API` behind a JetStream `domain`).
///
/// A party may publish only messages from itself to another party of the roster (so nothing can
/// be parked for anyone outside it), and of the JetStream API only: the account info, the stream
/// list (to find and verify the stream, no subject details), and its own inbox consumer (info,
/// create with its own filter, delete, pull, acknowledge). Not: creating, changing, deleting or
/// purging streams, `STREAM.INFO` (whose `subjects_filter` would show which pairs of parties have
/// messages pending), reading messages directly, or anyone else's consumer. It subscribes only
/// to its own inbox prefix. The admin user is unrestricted.
pub fn broker_users(parties: &[(String, String)], admin: &str, names: &Names, domain: Option<&str>) -> String {
    with_admin(
        parties
            .iter()
            .map(|(id, key)| party_user(id, key, parties, names, domain))
            .collect(),
        admin,
    )
}

/// `users` and the operator's `admin`, as the text of a `users` list.
fn with_admin(mut users: Vec<String>, admin: &str) -> String {
    users.push(admin_user(admin));
    users.join("\n")
}

fn admin_user(admin: &str) -> String {
    format!(
        "    # admin: the operator, unrestricted (fsc federation provision, inspection); seed in admin/nats.nk\n    \
         {{ nkey: \"{admin}\" }}"
    )
}

/// What party `id` may publish: messages from itself to every other party of the roster, the
/// JetStream API subjects it calls (behind a JetStream `domain`, under `$JS.<domain>.API`), and
/// the subjects it acknowledges on (behind a domain also in the `$JS.ACK.<domain>.<account
/// hash>.` form the domain's servers use).
fn party_publish(id: &str, parties: &[(String, String)], names: &Names, domain: Option<&str>) -> Vec<String> {
    let js_api = api_prefix(domain);
    // The party's own stream: its inbox.
    let stream = names.inbox_stream(id);
    let consumer = names.consumer(id);
    let mut subjects: Vec<String> = parties
        .iter()
        .filter(|(other, _)| other != id)
        .map(|(other, _)| names.subject("*", other, id))
        .collect();
    subjects.extend([
        format!("{js_api}.INFO"),
        format!("{js_api}.STREAM.LIST"),
        format!("{js_api}.CONSUMER.INFO.{stream}.{consumer}"),
        format!(
            "{js_api}.CONSUMER.CREATE.{stream}.{consumer}.{}",
            names.inbox_filter(id)
        ),
        format!("{js_api}.CONSUMER.DELETE.{stream}.{consumer}"),
        format!("{js_api}.CONSUMER.MSG.NEXT.{stream}.{consumer}"),
        format!("$JS.ACK.{stream}.{consumer}.>"),
    ]);
    if let Some(domain) = domain {
        subjects.push(format!("$JS.ACK.{domain}.*.{stream}.{consumer}.>"));
    }
    subjects
}

/// Party `id`'s user for its node: publishes only as itself to the other parties of the roster.
fn party_user(id: &str, public_key: &str, parties: &[(String, String)], names: &Names, domain: Option<&str>) -> String {
    user_text(
        &format!("{id}: publishes only as itself to the roster, reads only its own inbox"),
        public_key,
        &party_publish(id, parties, names, domain),
        &[],
        &names.inbox_prefix(id),
    )
}

fn user_text(comment: &str, public_key: &str, publish: &[String], deny: &[String], inbox_prefix: &str) -> String {
    let quoted = |subjects: &[String]| {
        subjects
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let deny = if deny.is_empty() {
        String::new()
    } else {
        format!(", deny: [{}]", quoted(deny))
    };
    format!(
        "    # {comment}\n    {{ nkey: \"{public_key}\", permissions: {{\n        publish: {{ allow: [{}]{deny} }},\n        \
         subscribe: {{ allow: [\"{inbox_prefix}.>\"] }}\n    }} }}",
        quoted(publish),
    )
}

/// The broker's users for the layouts (`topology::Users`): every party's NKey user and the
/// operator's.
struct BrokerUsers {
    parties: Vec<(String, String)>,
    admin: String,
    names: Names,
}

impl Users for BrokerUsers {
    fn all(&self, domain: Option<&str>) -> String {
        broker_users(&self.parties, &self.admin, &self.names, domain)
    }

    fn party(&self, party: &str, domain: Option<&str>) -> String {
        self.parties
            .iter()
            .filter(|(id, _)| id == party)
            .map(|(id, key)| party_user(id, key, &self.parties, &self.names, domain))
            .collect()
    }

    fn leaves(&self, domain: Option<&str>) -> String {
        let users = self
            .parties
            .iter()
            .map(|(id, key)| {
                // A hub tells a leaf of the stream's interest (`<prefix>.>`) only if the leaf's
                // user may publish to it, as nats-server (2.15) judges: it looks for allowed
                // subjects under `<prefix>.>` through literal tokens but not below a `*`, so
                // `<prefix>.*.<other>.<id>` alone would cut the leaf off. One literal subject
                // that no party can be sent to (`_` is no party id) makes the interest pass, and
                // a deny of that same subject keeps it from being used.
                let marker = self.names.subject("_", "_", id);
                let mut publish = party_publish(id, &self.parties, &self.names, domain);
                publish.push(marker.clone());
                user_text(
                    &format!("{id}'s leaf server: publishes only as {id} to the roster, receives only {id}'s inbox"),
                    key,
                    &publish,
                    &[marker],
                    &self.names.inbox_prefix(id),
                )
            })
            .collect();
        with_admin(users, &self.admin)
    }
}

fn absolute(path: &Path) -> Result<PathBuf, Error> {
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_writes_a_loadable_federation() {
        let dir = tempfile::tempdir().unwrap();
        let parties: Vec<String> = ["alice", "bob", "carol"].map(String::from).to_vec();
        let options = InitOptions {
            out: dir.path().join("fed"),
            api_urls: InitOptions::local_api_urls(55501, 3, false).unwrap(),
            parties,
            nats_url: "nats://127.0.0.1:4333".into(),
            tls: false,
            broker: Default::default(),
            stream: Default::default(),
        };
        init(&options).unwrap();
        let roster = Roster::load(&dir.path().join("fed/federation.toml")).unwrap();
        assert_eq!(roster.parties.len(), 3);
        let config = NodeConfig::load(&dir.path().join("fed/bob/node.toml"), |_| None).unwrap();
        assert_eq!((config.id.as_str(), config.listen.as_str()), ("bob", "127.0.0.1:55502"));
        assert!(NodeKeys::load(&config.x25519_key, &config.ed25519_key).is_ok());
        let overridden = NodeConfig::load(&dir.path().join("fed/bob/node.toml"), |k| {
            (k == "FSC_DEFAULT_DEADLINE_S").then(|| "30".to_string())
        })
        .unwrap();
        assert_eq!(overridden.default_deadline_s, 30);
        let conf = std::fs::read_to_string(dir.path().join("fed/nats-server.conf")).unwrap();
        assert!(conf.contains("listen: \"127.0.0.1:4333\""));
        assert!(conf.contains("\"$JS.API.CONSUMER.CREATE.FSC-carol.inbox-carol.fsc.*.carol.*\""));
        // Each party publishes to the others only, as itself.
        assert!(
            conf.contains("\"fsc.*.alice.carol\", \"fsc.*.bob.carol\", \"$JS.API.INFO\""),
            "{conf}"
        );
        assert!(
            !conf.contains("STREAM.INFO") && !conf.contains("STREAM.CREATE"),
            "{conf}"
        );
        let admin = AdminConfig::load(&dir.path().join("fed")).unwrap();
        assert_eq!(admin.nats_url, "nats://127.0.0.1:4333");
        assert!(admin.nats_nkey.is_file());
        assert_eq!(roster.stream, StreamSpec::default());
        assert!(init(&options).is_err(), "an existing federation is never overwritten");
        // Nothing generated names where it was generated: the directory can move.
        for file in [
            "federation.toml",
            "nats-server.conf",
            "alice/node.toml",
            "admin/admin.toml",
        ] {
            let text = std::fs::read_to_string(dir.path().join("fed").join(file)).unwrap();
            assert!(!text.contains(dir.path().to_str().unwrap()), "{file}:\n{text}");
        }
    }

    #[test]
    fn api_urls_may_be_https_with_default_ports() {
        let listen = |url: &str| ApiEndpoint::parse(url).map(|e| (e.https, e.listen_address()));
        assert_eq!(
            listen("https://alice.example.org").unwrap(),
            (true, "0.0.0.0:443".into())
        );
        assert_eq!(
            listen("https://alice.example.org/fsc").unwrap(),
            (true, "0.0.0.0:443".into())
        );
        assert_eq!(listen("http://bob:55502").unwrap(), (false, "0.0.0.0:55502".into()));
        assert_eq!(listen("http://127.0.0.1").unwrap(), (false, "127.0.0.1:80".into()));
        assert_eq!(listen("https://[::1]:8443").unwrap(), (true, "[::1]:8443".into()));
        assert_eq!(listen("https://[::1]").unwrap(), (true, "[::1]:443".into()));
        for bad in [
            "alice:443",
            "ftp://alice",
            "http://alice:port",
            "https://",
            "http://u:p@alice",
        ] {
            assert!(listen(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn init_with_tls_writes_a_ca_and_certificates_the_nodes_load() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("fed");
        let mut options = InitOptions {
            out: out.clone(),
            parties: vec!["alice".into(), "bob".into()],
            nats_url: "nats://127.0.0.1:4333".into(),
            api_urls: vec!["https://alice.example.org".into(), "http://bob:55502".into()],
            tls: true,
            broker: Default::default(),
            stream: Default::default(),
        };
        let error = init(&options).unwrap_err().to_string();
        assert!(error.contains("http://bob:55502"), "{error}");
        options.api_urls = InitOptions::local_api_urls(55501, 2, true).unwrap();
        init(&options).unwrap();
        assert!(out.join("ca.crt").is_file() && out.join("ca.key").is_file());
        let config = NodeConfig::load(&out.join("alice/node.toml"), |_| None).unwrap();
        assert_eq!(config.tls_cert, Some(out.join("alice/tls.crt")));
        assert!(!config.allow_plain_http);
        assert!(fsc_node::tls::server_config(&config).unwrap().is_some());
    }

    #[test]
    fn plain_http_beyond_loopback_is_written_down_as_a_choice() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("fed");
        init(&InitOptions {
            out: out.clone(),
            parties: vec!["alice".into(), "bob".into()],
            nats_url: "nats://nats:4222".into(),
            api_urls: vec!["http://alice:55501".into(), "https://bob.example.org".into()],
            tls: false,
            broker: Default::default(),
            stream: Default::default(),
        })
        .unwrap();
        let alice = NodeConfig::load(&out.join("alice/node.toml"), |_| None).unwrap();
        assert!(alice.allow_plain_http && alice.tls_cert.is_none());
        let bob = NodeConfig::load(&out.join("bob/node.toml"), |_| None).unwrap();
        assert!(!bob.allow_plain_http);
        assert_eq!(bob.tls_key, Some(out.join("bob/tls.key")));
        assert_eq!(bob.listen, "0.0.0.0:443");
        // Without the files yet, the node says which it misses.
        let error = fsc_node::tls::server_config(&bob).unwrap_err().to_string();
        assert!(error.contains("tls.crt"), "{error}");
    }

    #[test]
    fn a_cluster_federation_asks_for_three_replicas_and_keeps_its_route_password_secret() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("fed");
        init(&InitOptions {
            out: out.clone(),
            parties: vec!["alice".into(), "bob".into()],
            nats_url: "nats://10.0.0.1:4222,nats://10.0.0.2:4222,nats://10.0.0.3:4222".into(),
            api_urls: InitOptions::local_api_urls(55501, 2, false).unwrap(),
            tls: false,
            broker: BrokerOptions {
                topology: Topology::Cluster,
                ..Default::default()
            },
            stream: Default::default(),
        })
        .unwrap();
        let roster = Roster::load(&out.join("federation.toml")).unwrap();
        assert_eq!(roster.stream.replicas, 3);
        let bob = NodeConfig::load(&out.join("bob/node.toml"), |_| None).unwrap();
        assert!(bob.nats_url.starts_with("nats://10.0.0.2:4222,"), "{}", bob.nats_url);
        for n in 1..=3 {
            let file = out.join(format!("nats-{n}.conf"));
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "nats-{n}.conf holds the route password");
        }
        assert!(!out.join("nats-server.conf").exists());
    }
}
