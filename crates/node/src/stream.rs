//! The federation's stream: its names, the config it must have, provisioning and verification.
//!
//! The roster's `[stream]` table ([`StreamSpec`]) fixes the stream every party expects. The
//! operator creates it, once, with the broker's `admin` user (`fsc federation provision`, which
//! calls [`provision`]); party users may not create, change or delete streams (the broker
//! permissions `fsc federation init` writes). A node never creates the stream: it looks for it
//! with `STREAM.LIST` (a party may not call `STREAM.INFO`, whose `subjects_filter` would show
//! which pairs of parties have messages pending; the list reports no subject details, only their
//! count), waits while it is absent, and [`verify`]s it before every (re)creation of its inbox
//! consumer: a stream whose subjects, retention, limits or copies differ from the spec, or that
//! republishes, mirrors, sources or transforms messages (which would copy them where some party
//! could read them), is refused, and the node stops with an error naming the field.
//!
//! [`Names`] derives every subject and name from the spec, so two federations (different stream
//! names and subject prefixes) can share one broker account.

use crate::config::{Roster, StreamSpec, nats_servers};
use crate::error::Error;
use crate::federation::AdminConfig;
use async_nats::jetstream::{self, response::Response, stream};
use serde::Deserialize;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// Every name a federation uses on the broker, derived from its [`StreamSpec`].
#[derive(Debug, Clone, PartialEq)]
pub struct Names {
    stream: String,
    prefix: String,
}

impl Names {
    pub fn new(spec: &StreamSpec) -> Names {
        Names {
            stream: spec.name.clone(),
            prefix: spec.subject_prefix.clone(),
        }
    }

    /// The stream's name.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The stream's one subject filter: every subject under the prefix.
    pub fn subjects(&self) -> String {
        format!("{}.>", self.prefix)
    }

    /// The subject of a message of `computation` from `from` to `to`.
    pub fn subject(&self, computation: &str, to: &str, from: &str) -> String {
        format!("{}.{computation}.{to}.{from}", self.prefix)
    }

    /// `(computation, to, from)` of a subject of this federation.
    pub fn parse<'a>(&self, subject: &'a str) -> Option<(&'a str, &'a str, &'a str)> {
        let rest = subject.strip_prefix(self.prefix.as_str())?.strip_prefix('.')?;
        let mut parts = rest.split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(computation), Some(to), Some(from), None) => Some((computation, to, from)),
            _ => None,
        }
    }

    /// The filter of `party`'s inbox consumer: everything addressed to it.
    pub fn inbox_filter(&self, party: &str) -> String {
        format!("{}.*.{party}.*", self.prefix)
    }

    /// The durable consumer of `party`'s inbox.
    pub fn consumer(&self, party: &str) -> String {
        format!("inbox-{party}")
    }

    /// The inbox prefix of `party`'s NATS connection: replies to it arrive only there, and the
    /// stream's name in it keeps two federations' replies apart.
    pub fn inbox_prefix(&self, party: &str) -> String {
        format!("_INBOX_{}.{party}", self.stream)
    }
}

/// The stream config the spec describes: work queue (a message is gone once its receiver
/// acknowledged it), on disk, refusing new messages when full (rather than dropping old ones a
/// receiver still needs), deduplicating re-sends.
pub fn expected_config(spec: &StreamSpec) -> stream::Config {
    let names = Names::new(spec);
    stream::Config {
        name: spec.name.clone(),
        subjects: vec![names.subjects()],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        discard: stream::DiscardPolicy::New,
        discard_new_per_subject: true,
        max_bytes: spec.max_bytes,
        max_message_size: spec.max_msg_size,
        max_messages_per_subject: spec.max_msgs_per_subject,
        max_age: Duration::from_secs(spec.max_age_s),
        duplicate_window: Duration::from_secs(spec.duplicate_window_s),
        num_replicas: spec.replicas,
        placement: (!spec.placement_tags.is_empty()).then(|| stream::Placement {
            cluster: None,
            tags: spec.placement_tags.clone(),
        }),
        description: Some("fsc federation messages (fsc federation provision)".into()),
        ..Default::default()
    }
}

/// A field of the stream that differs from the spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    pub field: &'static str,
    pub expected: String,
    pub found: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "field `{}` is {}, the roster's [stream] expects {}",
            self.field, self.found, self.expected
        )
    }
}

/// The first field (in the order below) where `found` differs from what `spec` describes.
/// Checked: what decides where messages go and who could read them (subjects, republish,
/// mirror, sources, subject transform), whether they stay until acknowledged (retention,
/// storage, discard, sealed, no_ack, rollup), and the limits and copies of the spec. Not
/// checked: what only the broker's operator can change and no party can use (descriptions,
/// metadata, compression, direct get, which parties may not call).
pub fn verify(spec: &StreamSpec, found: &stream::Config) -> Result<(), Mismatch> {
    let expected = expected_config(spec);
    // Each field as text, in a form where equal means equivalent (sorted lists, none as empty).
    type Show = fn(&stream::Config) -> String;
    let fields: [(&'static str, Show); 19] = [
        ("subjects", |c| {
            let mut subjects = c.subjects.clone();
            subjects.sort();
            format!("{subjects:?}")
        }),
        ("republish", |c| format!("{:?}", c.republish)),
        ("mirror", |c| format!("{:?}", c.mirror)),
        ("sources", |c| format!("{:?}", c.sources.as_deref().unwrap_or_default())),
        ("subject_transform", |c| format!("{:?}", c.subject_transform)),
        ("retention", |c| format!("{:?}", c.retention)),
        ("storage", |c| format!("{:?}", c.storage)),
        ("discard", |c| format!("{:?}", c.discard)),
        ("discard_new_per_subject", |c| c.discard_new_per_subject.to_string()),
        ("sealed", |c| c.sealed.to_string()),
        ("no_ack", |c| c.no_ack.to_string()),
        ("allow_rollup", |c| c.allow_rollup.to_string()),
        ("max_bytes", |c| c.max_bytes.to_string()),
        ("max_msg_size", |c| c.max_message_size.to_string()),
        ("max_msgs_per_subject", |c| c.max_messages_per_subject.to_string()),
        ("max_age", |c| format!("{:?}", c.max_age)),
        ("duplicate_window", |c| format!("{:?}", c.duplicate_window)),
        ("replicas", |c| c.num_replicas.to_string()),
        ("placement_tags", |c| {
            let mut tags = c.placement.as_ref().map(|p| p.tags.clone()).unwrap_or_default();
            tags.sort();
            format!("{tags:?}")
        }),
    ];
    for (field, show) in fields {
        let (expected, found) = (show(&expected), show(found));
        if expected != found {
            return Err(Mismatch { field, expected, found });
        }
    }
    Ok(())
}

/// One page of `STREAM.LIST`.
#[derive(Deserialize)]
struct StreamPage {
    total: usize,
    #[serde(default)]
    streams: Option<Vec<stream::Info>>,
}

/// The stream named `name` as `STREAM.LIST` reports it (config and state, without subject
/// details), or `None` if the account has no such stream. `STREAM.LIST` rather than
/// `STREAM.INFO`: parties may call only the former.
pub async fn find(js: &jetstream::Context, name: &str) -> Result<Option<stream::Info>, Error> {
    let mut offset = 0;
    loop {
        let page: Response<StreamPage> = js
            .request("STREAM.LIST", &json!({ "offset": offset }))
            .await
            .map_err(|e| Error::Broker(format!("listing streams: {e}")))?;
        let page = match page {
            Response::Ok(page) => page,
            Response::Err { error } => return Err(Error::Broker(format!("listing streams: {error}"))),
        };
        let streams = page.streams.unwrap_or_default();
        let listed = streams.len();
        if let Some(info) = streams.into_iter().find(|info| info.config.name == name) {
            return Ok(Some(info));
        }
        offset += listed;
        if listed == 0 || offset >= page.total {
            return Ok(None);
        }
    }
}

/// The stream `name` differs from the roster's spec: what a node stops with and
/// `fsc federation provision` fails with.
pub fn refusal(name: &str, mismatch: &Mismatch) -> String {
    format!(
        "stream {name} on the broker differs from the roster's [stream]: {mismatch}. \
         The operator deletes it and runs `fsc federation provision` again"
    )
}

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
    let client = crate::transport::login_options(&admin.broker_login())
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
            Err(Error::Broker(error)) if started.elapsed() < PROVISION_PATIENCE => {
                tracing::info!(%error, "the broker is not ready; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            outcome => return outcome.map(|done| (roster.stream.name.clone(), done)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec() {
        let spec = StreamSpec {
            name: "ACME".into(),
            subject_prefix: "acme.fsc".into(),
            ..Default::default()
        };
        let names = Names::new(&spec);
        assert_eq!(names.subject("c1", "bob", "alice"), "acme.fsc.c1.bob.alice");
        assert_eq!(names.parse("acme.fsc.c1.bob.alice"), Some(("c1", "bob", "alice")));
        for other in [
            "fsc.c1.bob.alice",
            "acme.fsc.c1.bob",
            "acme.fsc.c1.bob.alice.x",
            "acme.fscx.c1.bob.alice",
        ] {
            assert_eq!(names.parse(other), None, "{other}");
        }
        assert_eq!(names.inbox_filter("bob"), "acme.fsc.*.bob.*");
        assert_eq!(names.subjects(), "acme.fsc.>");
        assert_eq!(names.inbox_prefix("bob"), "_INBOX_ACME.bob");
        let default = Names::new(&StreamSpec::default());
        assert_eq!(default.stream(), "FSC");
        assert_ne!(default.inbox_prefix("bob"), names.inbox_prefix("bob"));
    }

    #[test]
    fn the_expected_config_verifies() {
        let spec = StreamSpec {
            replicas: 3,
            placement_tags: vec!["b".into(), "a".into()],
            ..Default::default()
        };
        let mut config = expected_config(&spec);
        assert_eq!(verify(&spec, &config), Ok(()));
        // What the operator may vary freely.
        config.description = None;
        config.allow_direct = true;
        config.placement.as_mut().unwrap().tags.reverse();
        assert_eq!(verify(&spec, &config), Ok(()));
    }

    /// Makes a stream config differ from the spec in one field.
    type Change = fn(&mut stream::Config);

    #[test]
    fn every_differing_field_is_named() {
        let spec = StreamSpec::default();
        let changes: Vec<(&str, Change)> = vec![
            ("subjects", (|c| c.subjects.push("other.>".into()))),
            (
                "republish",
                (|c| {
                    c.republish = Some(stream::Republish {
                        source: "fsc.>".into(),
                        destination: "_INBOX_FSC.mallory.copy".into(),
                        headers_only: false,
                    })
                }),
            ),
            (
                "mirror",
                (|c| {
                    c.mirror = Some(stream::Source {
                        name: "ELSEWHERE".into(),
                        ..Default::default()
                    })
                }),
            ),
            (
                "sources",
                (|c| {
                    c.sources = Some(vec![stream::Source {
                        name: "ELSEWHERE".into(),
                        ..Default::default()
                    }])
                }),
            ),
            (
                "subject_transform",
                (|c| {
                    c.subject_transform = Some(stream::SubjectTransform {
                        source: "fsc.>".into(),
                        destination: "copy.>".into(),
                    })
                }),
            ),
            ("retention", (|c| c.retention = stream::RetentionPolicy::Limits)),
            ("storage", (|c| c.storage = stream::StorageType::Memory)),
            ("discard", (|c| c.discard = stream::DiscardPolicy::Old)),
            ("discard_new_per_subject", (|c| c.discard_new_per_subject = false)),
            ("sealed", (|c| c.sealed = true)),
            ("no_ack", (|c| c.no_ack = true)),
            ("allow_rollup", (|c| c.allow_rollup = true)),
            ("max_bytes", (|c| c.max_bytes = -1)),
            ("max_msg_size", (|c| c.max_message_size = -1)),
            ("max_msgs_per_subject", (|c| c.max_messages_per_subject = -1)),
            ("max_age", (|c| c.max_age = Duration::ZERO)),
            ("duplicate_window", (|c| c.duplicate_window = Duration::from_secs(1))),
            ("replicas", (|c| c.num_replicas = 3)),
            (
                "placement_tags",
                (|c| {
                    c.placement = Some(stream::Placement {
                        cluster: None,
                        tags: vec!["party-owned".into()],
                    })
                }),
            ),
        ];
        for (field, change) in changes {
            let mut config = expected_config(&spec);
            change(&mut config);
            let mismatch = verify(&spec, &config).unwrap_err();
            assert_eq!(mismatch.field, field);
            assert_ne!(mismatch.expected, mismatch.found);
            let error = refusal("FSC", &mismatch);
            assert!(error.contains(&format!("`{field}`")), "{error}");
        }
    }

    #[test]
    fn the_message_names_both_values() {
        let spec = StreamSpec::default();
        let mut config = expected_config(&spec);
        config.max_bytes = 5;
        let error = refusal("FSC", &verify(&spec, &config).unwrap_err());
        assert!(
            error.contains("`max_bytes` is 5") && error.contains("expects 1073741824"),
            "{error}"
        );
    }
}
