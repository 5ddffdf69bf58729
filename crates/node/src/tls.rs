//! TLS of the HTTP API: the server side's rustls config from a node's PEM files, and the private
//! CA with per-node certificates that `fsc federation init --tls` writes for a test federation.
//!
//! Only the API that clients, the CLI and browsers use is concerned: nodes talk to each other
//! through the broker (NATS), with every message sealed end to end (`envelope`).

use crate::config::NodeConfig;
use crate::error::Error;
use crate::keys;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::path::Path;
use std::sync::Arc;

/// The server's TLS config, if `tls_cert` and `tls_key` are set: HTTP/1.1 only, and with
/// `tls_client_ca`, a client certificate signed by one of those CAs is required.
pub fn server_config(config: &NodeConfig) -> Result<Option<Arc<rustls::ServerConfig>>, Error> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let chain = certificates(cert, "tls_cert")?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| Error::Config(format!("tls_key {}: no PEM private key: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?;
    let builder = match &config.tls_client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in certificates(path, "tls_client_ca")? {
                roots
                    .add(ca)
                    .map_err(|e| Error::Config(format!("tls_client_ca {}: {e}", path.display())))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| Error::Config(format!("tls_client_ca {}: {e}", path.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut server = builder.with_single_cert(chain, key).map_err(|e| {
        Error::Config(format!(
            "tls_cert {} and tls_key do not make a usable certificate: {e}",
            cert.display()
        ))
    })?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(server)))
}

/// Every certificate of a PEM file (the config key `what`); at least one.
fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bad = |e: &dyn std::fmt::Display| {
        Error::Config(format!(
            "{what} {}: {e} (a PEM file of certificates is expected there)",
            path.display()
        ))
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    if chain.is_empty() {
        return Err(bad(&"no PEM certificate"));
    }
    Ok(chain)
}

/// A private certificate authority, to sign the nodes' certificates of a test federation.
pub struct Authority {
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
}

impl Authority {
    pub fn new(name: &str) -> Result<Authority, Error> {
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let key = rcgen::KeyPair::generate().map_err(crypto)?;
        let cert = params.self_signed(&key).map_err(crypto)?;
        Ok(Authority { key, cert })
    }

    /// Writes the CA's certificate (to give to clients) and its key (0600, to sign more).
    pub fn write(&self, cert: &Path, key: &Path) -> Result<(), Error> {
        std::fs::write(cert, self.cert.pem())?;
        keys::write_secret(key, &self.key.serialize_pem())
    }

    /// Writes a new server certificate for `host` (a DNS name or an IP address) and its key
    /// (0600). Loopback hosts also get `localhost` and `127.0.0.1`, so either URL works.
    pub fn issue_server(&self, host: &str, cert: &Path, key: &Path) -> Result<(), Error> {
        let mut names = vec![host.to_string()];
        let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if loopback {
            names.extend(["localhost".to_string(), "127.0.0.1".to_string()]);
            names.sort();
            names.dedup();
        }
        let params = rcgen::CertificateParams::new(names).map_err(crypto)?;
        self.issue(params, host, rcgen::ExtendedKeyUsagePurpose::ServerAuth, cert, key)
    }

    /// Writes a new client certificate for `name`, for nodes with `tls_client_ca`, as one PEM
    /// file with its key (0600: what `--client-cert` takes).
    pub fn issue_client(&self, name: &str, identity: &Path) -> Result<(), Error> {
        let params = rcgen::CertificateParams::new(Vec::new()).map_err(crypto)?;
        self.issue(
            params,
            name,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            identity,
            identity,
        )
    }

    /// Signs `params` for `name` and `usage`; writes the certificate, then the key (appended
    /// if both go to one file).
    fn issue(
        &self,
        mut params: rcgen::CertificateParams,
        name: &str,
        usage: rcgen::ExtendedKeyUsagePurpose,
        cert: &Path,
        key: &Path,
    ) -> Result<(), Error> {
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let pair = rcgen::KeyPair::generate().map_err(crypto)?;
        let signed = params.signed_by(&pair, &self.cert, &self.key).map_err(crypto)?;
        if cert == key {
            keys::write_secret(key, &format!("{}{}", signed.pem(), pair.serialize_pem()))
        } else {
            std::fs::write(cert, signed.pem())?;
            keys::write_secret(key, &pair.serialize_pem())
        }
    }
}

fn crypto(error: rcgen::Error) -> Error {
    Error::Crypto(format!("certificate generation: {error}"))
}
