//! `fsc federation provision`: the operator creates the federation's streams, one per party's
//! inbox, once, as the broker's `admin` user (party users may not create, change or delete
//! streams). Nodes only find and verify them (`fsc_node::config::stream`).

use crate::error::Error;
use crate::federation::AdminConfig;
use async_nats::jetstream;
use fsc_node::config::broker::{login_options, nats_servers};
use fsc_node::config::roster::Roster;
use fsc_node::config::stream::{Names, StreamSpec, expected_config, find, refusal, verify};
use std::path::Path;
use std::time::{Duration, Instant};

/// What [`provision`] did to one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioned {
    Created,
    /// The stream was there already, as specified.
    Found,
    /// The stream differed and was updated to the spec (`update`).
    Updated,
}

/// Creates each party's stream as the spec describes it, or finds it as specified; an existing
/// stream that differs is an error naming the field, or with `update` is changed to the spec
/// (keeping its messages; the broker refuses some changes, e.g. of retention or storage). Needs
/// a broker user that may create streams (the federation's `admin`).
///
/// A federation set up before the streams were per party has one stream `<name>` for all
/// subjects, which the per-party streams' subjects overlap: `update` deletes it if it holds no
/// message (otherwise the operator lets the old nodes deliver them first), without `update` it is
/// an error saying so.
pub async fn provision(
    js: &jetstream::Context,
    spec: &StreamSpec,
    parties: &[String],
    update: bool,
) -> Result<Vec<(String, Provisioned)>, Error> {
    let names = Names::new(spec);
    if let Some(shared) = find(js, &spec.name).await? {
        let waiting = shared.state.messages;
        if !update || waiting > 0 {
            return Err(Error::Config(format!(
                "stream {} is the one stream for all parties of an older fsc, which the streams per \
                 party replace; it holds {waiting} messages. Let the nodes deliver them (it empties \
                 as they do), then run `fsc federation provision --update`: it deletes the empty \
                 stream and creates one per party",
                spec.name
            )));
        }
        js.delete_stream(&spec.name)
            .await
            .map_err(|e| Error::Broker(format!("deleting the empty stream {}: {e}", spec.name)))?;
    }
    let mut done = Vec::new();
    for party in parties {
        let name = names.inbox_stream(party);
        let what = provision_one(js, spec, &name, party, update).await?;
        done.push((name, what));
    }
    Ok(done)
}

/// [`provision`] for `party`'s stream `name`.
async fn provision_one(
    js: &jetstream::Context,
    spec: &StreamSpec,
    name: &str,
    party: &str,
    update: bool,
) -> Result<Provisioned, Error> {
    if let Some(info) = find(js, name).await? {
        let Err(mismatch) = verify(spec, party, &info.config) else {
            return Ok(Provisioned::Found);
        };
        if !update {
            return Err(Error::Config(refusal(name, &mismatch)));
        }
        let updated = js
            .update_stream(expected_config(spec, party))
            .await
            .map_err(|e| Error::Config(format!("updating stream {name} ({mismatch}): {e}")))?;
        verify(spec, party, &updated.config).map_err(|mismatch| Error::Config(refusal(name, &mismatch)))?;
        return Ok(Provisioned::Updated);
    }
    js.create_stream(expected_config(spec, party))
        .await
        .map_err(|e| Error::Broker(format!("creating stream {name}: {e}")))?;
    Ok(Provisioned::Created)
}

/// How long `fsc federation provision` retries a broker that is not ready yet (a JetStream
/// cluster electing its leader, a container still starting).
const PROVISION_PATIENCE: Duration = Duration::from_secs(30);

/// `fsc federation provision DIR`: creates (or finds as specified) the streams of the roster
/// `DIR/federation.toml`, one per party, as the operator's `admin` user of `DIR/admin/` (its
/// broker URL from `admin/admin.toml` unless `nats_url` is given). Returns each stream's name and
/// what was done to it.
pub async fn provision_federation(
    dir: &Path,
    nats_url: Option<&str>,
    update: bool,
) -> Result<Vec<(String, Provisioned)>, Error> {
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
    let parties: Vec<String> = roster.parties.iter().map(|p| p.id.clone()).collect();
    let started = Instant::now();
    loop {
        match provision(&js, &roster.stream, &parties, update).await {
            Err(Error::Node(fsc_node::Error::Broker(error)) | Error::Broker(error))
                if started.elapsed() < PROVISION_PATIENCE =>
            {
                tracing::info!(%error, "the broker is not ready; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            outcome => return outcome,
        }
    }
}
