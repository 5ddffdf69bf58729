//! The private CA with per-node certificates that `fsc federation init --tls` writes for a test
//! federation, and client certificates for nodes that require them (`tls_client_ca`).

use crate::error::Error;
use crate::secrets::write_secret;
use std::path::Path;

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
        write_secret(key, &self.key.serialize_pem())
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
            write_secret(key, &format!("{}{}", signed.pem(), pair.serialize_pem()))
        } else {
            std::fs::write(cert, signed.pem())?;
            write_secret(key, &pair.serialize_pem())
        }
    }
}

fn crypto(error: rcgen::Error) -> Error {
    Error::Crypto(format!("certificate generation: {error}"))
}
