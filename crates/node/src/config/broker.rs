//! How a broker user reaches the federation's broker: the servers of `nats_url`, the login
//! (NKey or `.creds`, TLS) and the JetStream API prefix. A node (node.toml) and the operator
//! provisioning the stream (`admin/admin.toml`) use the same settings with the same meaning.

use crate::error::Error;
use crate::keys;
use std::path::Path;

/// The servers a comma-separated list of broker URLs names.
pub fn nats_servers(urls: &str) -> Result<Vec<async_nats::ServerAddr>, Error> {
    let servers = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| {
            url.parse()
                .map_err(|e| Error::Config(format!("nats_url: cannot use {url:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if servers.is_empty() {
        return Err(Error::Config("nats_url names no server".into()));
    }
    Ok(servers)
}

/// A name NATS takes as one subject token, stream name or JetStream domain: `[A-Za-z0-9_-]+`.
pub fn is_name_token(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
}

/// How a broker user logs in and reaches the stream's JetStream API: a node (node.toml) or the
/// operator provisioning the stream (`admin/admin.toml`), with the same settings and the same
/// meaning.
#[derive(Debug, Clone, Copy)]
pub struct BrokerLogin<'a> {
    /// NKey seed file, unless `creds` is given.
    pub nkey: &'a Path,
    /// A `.creds` file (JWT and seed) instead of the NKey.
    pub creds: Option<&'a Path>,
    /// PEM CA certificates to trust for the broker's certificate (besides the system's).
    pub ca_file: Option<&'a Path>,
    /// PEM client certificate and key, for a broker that verifies clients.
    pub client_cert: Option<&'a Path>,
    pub client_key: Option<&'a Path>,
    /// The JetStream domain of the stream's servers, when they are reached through a leaf server.
    pub jetstream_domain: Option<&'a str>,
}

impl BrokerLogin<'_> {
    pub fn tls(&self) -> bool {
        self.ca_file.is_some() || self.client_cert.is_some()
    }

    /// The JetStream API prefix these settings call.
    pub fn api_prefix(&self) -> String {
        api_prefix(self.jetstream_domain)
    }

    /// Settings that cannot work together, or a domain NATS would not accept.
    pub fn validate(&self) -> Result<(), String> {
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err("nats_client_cert and nats_client_key go together: set both or neither".into());
        }
        if let Some(domain) = self.jetstream_domain {
            if !is_name_token(domain) {
                return Err(format!(
                    "jetstream_domain {domain:?} must be a NATS JetStream domain: letters, digits, - and _"
                ));
            }
        }
        Ok(())
    }
}

/// The JetStream API prefix in a JetStream `domain` (a leaf node's hub), or without one.
pub fn api_prefix(domain: Option<&str>) -> String {
    match domain {
        Some(domain) => format!("$JS.{domain}.API"),
        None => "$JS.API".to_string(),
    }
}

/// The credentials and TLS options of `login`; TLS is required once a CA file or a client
/// certificate is given.
pub async fn login_options(login: &BrokerLogin<'_>) -> Result<async_nats::ConnectOptions, Error> {
    let options = match login.creds {
        Some(creds) => async_nats::ConnectOptions::new()
            .credentials_file(creds)
            .await
            .map_err(|e| Error::Config(format!("nats_creds {}: {e}", creds.display())))?,
        None => async_nats::ConnectOptions::with_nkey(keys::read_secret(login.nkey)?.trim().to_string()),
    };
    let mut options = options.require_tls(login.tls());
    if let Some(ca) = login.ca_file {
        options = options.add_root_certificates(ca.to_path_buf());
    }
    if let (Some(cert), Some(key)) = (login.client_cert, login.client_key) {
        options = options.add_client_certificate(cert.to_path_buf(), key.to_path_buf());
    }
    Ok(options)
}
