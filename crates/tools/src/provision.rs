//! `fsc federation provision`: the operator creates the federation's stream, once, as the
//! broker's `admin` user (party users may not create, change or delete streams). Nodes only find
//! and verify it (`fsc_node::config::stream`).

use crate::error::Error;
use crate::federation::AdminConfig;
use async_nats::jetstream;
use fsc_node::config::broker::{login_options, nats_servers};
use fsc_node::config::roster::Roster;
use fsc_node::config::stream::{StreamSpec, expected_config, find, refusal, verify};
use std::path::Path;
use std::time::{Duration, Instant};

/// What [`provision`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioned {
    Created,
    /// The stream was there already, as specified.
    Found,
    /// The stream differed and was updated to the spec (`update`).
    Updated,
}

/// Creates the stream the spec describes, or finds it as specified; an existing stream that
/// differs is an error naming the field, or with `update` is changed to the spec (keeping its
/// messages; the broker refuses some changes, e.g. of retention or storage). Needs a broker user
/// that may create streams (the federation's `admin`).
pub async fn provision(js: &jetstream::Context, spec: &StreamSpec, update: bool) -> Result<Provisioned, Error> {
    if let Some(info) = find(js, &spec.name).await? {
        let Err(mismatch) = verify(spec, &info.config) else {
            return Ok(Provisioned::Found);
        };
        if !update {
            return Err(Error::Config(refusal(&spec.name, &mismatch)));
        }
        let updated = js
            .update_stream(expected_config(spec))
            .await
            .map_err(|e| Error::Config(format!("updating stream {} ({mismatch}): {e}", spec.name)))?;
        verify(spec, &updated.config).map_err(|mismatch| Error::Config(refusal(&spec.name, &mismatch)))?;
        return Ok(Provisioned::Updated);
    }
    js.create_stream(expected_config(spec))
        .await
        .map_err(|e| Error::Broker(format!("creating stream {}: {e}", spec.name)))?;
    Ok(Provisioned::Created)
}

/// How long `fsc federation provision` retries a broker that is not ready yet (a JetStream
/// cluster electing its leader, a container still starting).
const PROVISION_PATIENCE: Duration = Duration::from_secs(30);

/// `fsc federation provision DIR`: creates (or finds as specified) the stream of the roster
/// `DIR/federation.toml`, as the operator's `admin` user of `DIR/admin/` (its broker URL from
/// `admin/admin.toml` unless `nats_url` is given). Returns the stream's name and what was done.
pub async fn provision_federation(
    dir: &Path,
    nats_url: Option<&str>,
    update: bool,
) -> Result<(String, Provisioned), Error> {
    let roster = Roster::load(&dir.join("federation.toml"))?;
    let admin = AdminConfig::load(dir)?;
    let url = nats_url.unwrap_or(&admin.nats_url);
    let client = login_options(&admin.broker_login())
        .await?
        .name("fsc-provision")
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_secs(5)))
        .connect(nats_servers(url)?)
        .await
        .map_err(|e| Error::Broker(format!("cannot connect to {url}: {e}")))?;
    let js = jetstream::ContextBuilder::new()
        .api_prefix(admin.broker_login().api_prefix())
        .build(client);
    let started = Instant::now();
    loop {
        match provision(&js, &roster.stream, update).await {
            Err(Error::Node(fsc_node::Error::Broker(error)) | Error::Broker(error))
                if started.elapsed() < PROVISION_PATIENCE =>
            {
                tracing::info!(%error, "the broker is not ready; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            outcome => return outcome.map(|done| (roster.stream.name.clone(), done)),
        }
    }
}
