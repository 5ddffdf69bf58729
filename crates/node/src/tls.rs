//! TLS of the HTTP API: the server side's rustls config from a node's PEM files (the tools crate
//! makes the private CA and certificates of a test federation).
//!
//! Only the API that clients, the CLI and browsers use is concerned: nodes talk to each other
//! through the broker (NATS), with every message sealed end to end (`envelope`).

use crate::config::NodeConfig;
use crate::error::Error;
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
