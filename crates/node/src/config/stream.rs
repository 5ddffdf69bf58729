//! The federation's stream: its spec, its names, the config it must have, and verification.
//!
//! The roster's `[stream]` table ([`StreamSpec`]) fixes the streams every party expects: one per
//! party, `<name>-<party>`, holding that party's inbox (`<prefix>.*.<party>.*`) and bounded on its
//! own (`max_bytes` each). A party that is away fills only its own stream: messages to it are
//! refused when that is full, while the others' streams still take theirs (one stream for all
//! would refuse every message as soon as one absent party's backlog filled it). The
//! operator creates them, once, with the broker's `admin` user (`fsc federation provision`, in the
//! tools crate); party users may not create, change or delete streams (the broker
//! permissions `fsc federation init` writes). A node never creates a stream: it looks for them
//! with `STREAM.LIST` (a party may not call `STREAM.INFO`, whose `subjects_filter` would show
//! which pairs of parties have messages pending; the list reports no subject details, only their
//! count), waits while one is absent, and [`verify`]s every party's before every (re)creation of its inbox
//! consumer: a stream whose subjects, retention, limits or copies differ from the spec, or that
//! republishes, mirrors, sources or transforms messages (which would copy them where some party
//! could read them), is refused, and the node stops with an error naming the field.
//!
//! [`Names`] derives every subject and name from the spec, so two federations (different stream
//! names and subject prefixes) can share one broker account.

use super::broker::is_name_token;
use crate::error::Error;
use async_nats::jetstream::{self, response::Response, stream};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

/// The federation's JetStream stream (`[stream]` in the roster): what `fsc federation provision`
/// creates and what every node verifies before it uses the stream ([`verify`]). Every key
/// has a default, so a roster without the table describes the stream fsc always used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamSpec {
    /// The streams' common name: party `p`'s inbox is the stream `<name>-<p>`; two federations
    /// sharing a broker account need different names.
    pub name: String,
    /// The first token(s) of every subject (`<prefix>.<computation>.<to>.<from>`); two
    /// federations sharing a broker account need different prefixes.
    pub subject_prefix: String,
    /// Copies of every message (1, or 3 in a JetStream cluster).
    pub replicas: usize,
    /// Servers the stream may be placed on (their `server_tags`); empty: any.
    pub placement_tags: Vec<String>,
    /// The most bytes one party's stream (its inbox) holds; beyond it, publishes to that party are
    /// refused until it catches up. Messages to other parties are not affected.
    pub max_bytes: i64,
    /// The largest message (payload and headers); fsc chunks larger ones. At most the broker's
    /// `max_payload`, which `fsc federation init` sets to 8 MiB.
    pub max_msg_size: i32,
    /// The most messages waiting on one subject, i.e. from one party to another in one
    /// computation; beyond it, that sender's publishes are refused (a large message is up to
    /// 4,096 chunks).
    pub max_msgs_per_subject: i64,
    /// Messages older than this are dropped: more than any node's `max_deadline_s`.
    pub max_age_s: u64,
    /// The broker drops a re-sent message (same `Nats-Msg-Id`) within this window.
    pub duplicate_window_s: u64,
}

impl Default for StreamSpec {
    fn default() -> StreamSpec {
        StreamSpec {
            name: "FSC".into(),
            subject_prefix: "fsc".into(),
            replicas: 1,
            placement_tags: Vec::new(),
            max_bytes: 1 << 30,
            max_msg_size: 8 << 20,
            max_msgs_per_subject: 10_000,
            // The default max_deadline_s (1 h) plus an hour's margin for clock skew.
            max_age_s: 7200,
            duplicate_window_s: 120,
        }
    }
}

impl StreamSpec {
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |what: String| Err(Error::Config(format!("roster [stream]: {what}")));
        if self.name.len() > 32 || !is_name_token(&self.name) {
            return bad(format!("name {:?} must match [A-Za-z0-9_-]{{1,32}}", self.name));
        }
        // Dot-separated tokens, no wildcards: the prefix starts subjects and permissions.
        if self.subject_prefix.len() > 64 || !self.subject_prefix.split('.').all(is_name_token) {
            return bad(format!(
                "subject_prefix {:?} must be dot-separated tokens of [A-Za-z0-9_-]",
                self.subject_prefix
            ));
        }
        if !(1..=5).contains(&self.replicas) {
            return bad(format!("replicas must be between 1 and 5, got {}", self.replicas));
        }
        if self.max_bytes < 1 << 20 || self.max_msg_size < 1 << 10 || self.max_msgs_per_subject < 1 {
            return bad(
                "max_bytes must be at least 1 MiB, max_msg_size at least 1 KiB, max_msgs_per_subject at least 1".into(),
            );
        }
        if self.max_age_s == 0 || self.duplicate_window_s == 0 || self.duplicate_window_s > self.max_age_s {
            return bad("max_age_s and duplicate_window_s must be at least 1, the window at most max_age_s".into());
        }
        Ok(())
    }
}

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

    /// The federation's name on the broker (`[stream] name`): what its streams' names start with.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The stream holding `party`'s inbox: `<name>-<party>`.
    pub fn inbox_stream(&self, party: &str) -> String {
        format!("{}-{party}", self.stream)
    }

    /// The party whose inbox `stream` is, if it is one of this federation's names.
    pub fn stream_party<'a>(&self, stream: &'a str) -> Option<&'a str> {
        stream.strip_prefix(self.stream.as_str())?.strip_prefix('-')
    }

    /// Every subject under the prefix (all the federation's streams together).
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

    /// The filter of `party`'s inbox consumer, and its stream's one subject: everything addressed
    /// to it.
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

/// The config of `party`'s stream as the spec describes it: `party`'s inbox, work queue (a
/// message is gone once its receiver acknowledged it), on disk, refusing new messages when full
/// (rather than dropping old ones a receiver still needs), deduplicating re-sends.
pub fn expected_config(spec: &StreamSpec, party: &str) -> stream::Config {
    let names = Names::new(spec);
    stream::Config {
        name: names.inbox_stream(party),
        subjects: vec![names.inbox_filter(party)],
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
        description: Some(format!("fsc federation messages to {party} (fsc federation provision)")),
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

/// The first field (in the order below) where `found` differs from what `spec` describes for
/// `party`'s stream.
/// Checked: what decides where messages go and who could read them (subjects, republish,
/// mirror, sources, subject transform), whether they stay until acknowledged (retention,
/// storage, discard, sealed, no_ack, rollup), and the limits and copies of the spec. Not
/// checked: what only the broker's operator can change and no party can use (descriptions,
/// metadata, compression, direct get, which parties may not call).
pub fn verify(spec: &StreamSpec, party: &str, found: &stream::Config) -> Result<(), Mismatch> {
    let expected = expected_config(spec, party);
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
    Ok(list(js, |info| info.config.name == name).await?.pop())
}

/// The streams of the account that `wanted` picks, as `STREAM.LIST` reports them (a page holds
/// up to 256, so a federation's streams take one request).
pub async fn list(js: &jetstream::Context, wanted: impl Fn(&stream::Info) -> bool) -> Result<Vec<stream::Info>, Error> {
    let mut found = Vec::new();
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
        found.extend(streams.into_iter().filter(|info| wanted(info)));
        offset += listed;
        if listed == 0 || offset >= page.total {
            return Ok(found);
        }
    }
}

/// The stream `name` (a party's) differs from the roster's spec: what a node stops with and
/// `fsc federation provision` fails with.
pub fn refusal(name: &str, mismatch: &Mismatch) -> String {
    format!(
        "stream {name} on the broker differs from the roster's [stream]: {mismatch}. \
         The operator deletes it and runs `fsc federation provision` again"
    )
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
        assert_eq!(names.inbox_stream("bob"), "ACME-bob");
        assert_eq!(names.stream_party("ACME-bob"), Some("bob"));
        assert_eq!(names.stream_party("ACMEbob"), None);
        assert_eq!(
            expected_config(&spec, "bob").subjects,
            vec!["acme.fsc.*.bob.*".to_string()]
        );
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
        let mut config = expected_config(&spec, "bob");
        assert_eq!(verify(&spec, "bob", &config), Ok(()));
        // What the operator may vary freely.
        config.description = None;
        config.allow_direct = true;
        config.placement.as_mut().unwrap().tags.reverse();
        assert_eq!(verify(&spec, "bob", &config), Ok(()));
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
            let mut config = expected_config(&spec, "bob");
            change(&mut config);
            let mismatch = verify(&spec, "bob", &config).unwrap_err();
            assert_eq!(mismatch.field, field);
            assert_ne!(mismatch.expected, mismatch.found);
            let error = refusal("FSC-bob", &mismatch);
            assert!(error.contains(&format!("`{field}`")), "{error}");
        }
    }

    #[test]
    fn the_message_names_both_values() {
        let spec = StreamSpec::default();
        let mut config = expected_config(&spec, "bob");
        config.max_bytes = 5;
        let error = refusal("FSC-bob", &verify(&spec, "bob", &config).unwrap_err());
        assert!(
            error.contains("`max_bytes` is 5") && error.contains("expects 1073741824"),
            "{error}"
        );
    }
}
