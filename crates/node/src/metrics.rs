//! Counters, gauges and histograms of one node, rendered in the Prometheus text format at
//! `/metrics`.
//!
//! Plain atomics: updating a metric is a few relaxed adds on the hot path, with no registry. The
//! labelled series (histograms, failures by reason) sit in maps behind a read-write lock that is
//! written only when a series is first seen; their label values come from small fixed sets, so
//! no client or peer can make them grow without bound. This module only counts; it never decides
//! anything.

use crate::config::policy::Rule;
use crate::envelope::Rejection;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

/// Upper bounds (seconds) of the computation duration buckets: from a local SecureSum's
/// milliseconds to the longest deadline.
const COMPUTATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];
/// Upper bounds (seconds) of the HTTP request duration buckets; long polls (`?wait=`) land in
/// the upper ones.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Buckets of the largest histogram, plus `+Inf`.
const MAX_BUCKETS: usize = 17;
const _: () = assert!(COMPUTATION_BUCKETS.len() < MAX_BUCKETS && HTTP_BUCKETS.len() < MAX_BUCKETS);

#[derive(Default)]
pub struct Metrics {
    pub computations_submitted: AtomicU64,
    pub computations_succeeded: AtomicU64,
    pub computations_failed: AtomicU64,
    pub computations_active: AtomicI64,
    pub messages_sent: AtomicU64,
    pub messages_received: AtomicU64,
    pub messages_duplicate: AtomicU64,
    /// Messages for computations that had already finished here.
    pub messages_late: AtomicU64,
    /// Receipt signatures sent and received (`crate::receipt`), apart from the protocols' messages.
    pub receipts_sent: AtomicU64,
    pub receipts_received: AtomicU64,
    /// Invites sent for computations started here that waited for a party (`runtime::proposals`),
    /// among the messages sent.
    pub invites_sent: AtomicU64,
    rejected: [AtomicU64; Rejection::ALL.len()],
    /// Computations this node's policy refused, by rule ([`Rule::ALL`]'s order).
    policy_refusals: [AtomicU64; Rule::ALL.len()],
    pub store_batches: AtomicU64,
    pub store_batch_failures: AtomicU64,
    pub publish_retries: AtomicU64,
    /// Times a recipient's stream was found full (an episode lasts until it takes messages again).
    pub stream_full_episodes: AtomicU64,
    /// The recipients whose stream is full now: since when, and how many messages wait for them.
    full_streams: Mutex<BTreeMap<String, FullStream>>,
    /// Messages the stream stored for this node: a bundle or a chunk counts once.
    pub broker_messages_published: AtomicU64,
    /// Inbox consumers this node created on the broker: one at start, one each time it was gone.
    pub inbox_consumers_created: AtomicU64,
    pub outbox_pending: AtomicI64,
    pub broker_connected: AtomicBool,
    /// Bytes of chunks waiting for the rest of their messages.
    pub chunk_bytes: AtomicI64,
    /// Federatedsecure API representations held (set when `/metrics` is read).
    pub representations: AtomicI64,
    /// Bytes of data the federatedsecure API holds, of its `max_representation_bytes` (set when
    /// `/metrics` is read).
    pub representation_bytes: AtomicI64,
    /// When an authenticated message of each peer last arrived (since this node started).
    peers_seen: Mutex<BTreeMap<String, SystemTime>>,
    /// Computation durations, by microprotocol and outcome.
    computation_seconds: Series<Histogram>,
    /// Failed computations, by reason.
    failures: Series<AtomicU64>,
    /// HTTP request durations, by method, route template and status.
    http_seconds: Series<Histogram>,
    /// HTTP connections that found no room: `max_connections` open, or their peer's
    /// `max_connections_per_address`.
    pub http_refused_max_connections: AtomicU64,
    pub http_refused_per_address: AtomicU64,
}

/// A recipient whose stream is full: its messages wait in this node.
#[derive(Debug, Clone, PartialEq)]
pub struct FullStream {
    pub since: SystemTime,
    /// Messages for the recipient waiting in this node.
    pub waiting: usize,
}

/// Series of one metric, keyed by their rendered label set (`{a="x",b="y"}`).
#[derive(Default)]
struct Series<T>(RwLock<BTreeMap<String, Arc<T>>>);

impl<T: Default> Series<T> {
    /// The series of `labels`, created on first use.
    fn get(&self, labels: String) -> Arc<T> {
        if let Some(series) = self.0.read().expect("metrics lock").get(&labels) {
            return series.clone();
        }
        self.0.write().expect("metrics lock").entry(labels).or_default().clone()
    }

    fn snapshot(&self) -> Vec<(String, Arc<T>)> {
        let series = self.0.read().expect("metrics lock");
        series.iter().map(|(labels, s)| (labels.clone(), s.clone())).collect()
    }
}

/// A Prometheus histogram: counts per bucket (not cumulative; summed when rendered), the count,
/// and the sum in microseconds (an integer, so one atomic add).
#[derive(Default)]
struct Histogram {
    /// One per bound of the metric's buckets, then `+Inf`.
    buckets: [AtomicU64; MAX_BUCKETS],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, bounds: &[f64], seconds: f64) {
        let bucket = bounds.iter().position(|b| seconds <= *b).unwrap_or(bounds.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((seconds * 1e6).max(0.0) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        // `labels` is `{...}`: the bucket's `le` joins the others inside the braces.
        let inner = labels.trim_start_matches('{').trim_end_matches('}');
        let mut cumulative = 0;
        for (i, bound) in bounds
            .iter()
            .map(|b| b.to_string())
            .chain(["+Inf".to_string()])
            .enumerate()
        {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{inner},le=\"{bound}\"}} {cumulative}");
        }
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{labels} {sum}");
        let _ = writeln!(out, "{name}_count{labels} {}", self.count.load(Ordering::Relaxed));
    }
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn reject(&self, reason: Rejection) {
        let index = Rejection::ALL
            .iter()
            .position(|r| *r == reason)
            .expect("every rejection is listed");
        self.rejected[index].fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected(&self, reason: Rejection) -> u64 {
        let index = Rejection::ALL
            .iter()
            .position(|r| *r == reason)
            .expect("every rejection is listed");
        self.rejected[index].load(Ordering::Relaxed)
    }

    /// This node refused a computation under its policy's `rule` (not a peer's refusal it was
    /// told of).
    pub fn policy_refused(&self, rule: Rule) {
        let index = Rule::ALL.iter().position(|r| *r == rule).expect("every rule is listed");
        self.policy_refusals[index].fetch_add(1, Ordering::Relaxed);
    }

    /// Notes that an authenticated message of `peer` arrived now.
    pub fn peer_seen(&self, peer: &str) {
        let mut seen = self.peers_seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match seen.get_mut(peer) {
            Some(at) => *at = SystemTime::now(),
            None => {
                seen.insert(peer.to_string(), SystemTime::now());
            }
        }
    }

    /// The recipients whose stream is full now and the messages waiting for each (the publisher
    /// says): a recipient new here is full since now, one left out is no more.
    pub fn set_full_streams(&self, now: impl Iterator<Item = (String, usize)>) {
        let mut full = self
            .full_streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut kept = BTreeMap::new();
        for (recipient, waiting) in now {
            let since = full.get(&recipient).map_or_else(SystemTime::now, |f| f.since);
            kept.insert(recipient, FullStream { since, waiting });
        }
        *full = kept;
    }

    /// The recipients whose stream is full now.
    pub fn full_streams(&self) -> BTreeMap<String, FullStream> {
        self.full_streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// When each peer was last heard from; peers not heard from since the start are absent.
    pub fn peers_seen(&self) -> BTreeMap<String, SystemTime> {
        self.peers_seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// A computation ended here after `seconds`: it succeeded, or failed for `reason` (its
    /// error's code). One of a microprotocol this node does not have never ran (its client was
    /// refused, `unknown_microprotocol`): it counts as a failure, with no duration.
    pub fn computation_finished(&self, microprotocol: &str, failure: Option<&str>, seconds: f64) {
        let outcome = if failure.is_some() { "failed" } else { "succeeded" };
        if fsc_simon::machine::AVAILABLE.contains(&microprotocol) {
            self.computation_seconds
                .get(format!("{{microprotocol=\"{microprotocol}\",outcome=\"{outcome}\"}}"))
                .observe(COMPUTATION_BUCKETS, seconds);
        }
        if let Some(reason) = failure {
            let reason = crate::failure::REASONS
                .iter()
                .find(|r| **r == reason)
                .unwrap_or(&"other");
            self.failures
                .get(format!("{{reason=\"{reason}\"}}"))
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An HTTP request was answered after `seconds`; `route` is the matched route's template
    /// (`/v1/computations/{id}`), never the raw path.
    pub fn http_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.http_seconds
            .get(format!("{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}}"))
            .observe(HTTP_BUCKETS, seconds);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP fsc_build_info The running fsc's version.\n# TYPE fsc_build_info gauge\n\
             fsc_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let histograms = [
            (
                "fsc_computation_duration_seconds",
                "Time from a computation's start here to its final status, by microprotocol and outcome.",
                &self.computation_seconds,
                COMPUTATION_BUCKETS,
            ),
            (
                "fsc_http_request_duration_seconds",
                "Time to answer an HTTP request, by method, route template and status.",
                &self.http_seconds,
                HTTP_BUCKETS,
            ),
        ];
        for (name, help, series, bounds) in histograms {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for (labels, histogram) in series.snapshot() {
                histogram.render(&mut out, name, &labels, bounds);
            }
        }
        let mut counter = |name: &str, help: &str, labels: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (label, value) in labels {
                let _ = writeln!(out, "{name}{label} {value}");
            }
        };
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        counter(
            "fsc_computations_finished_total",
            "Computations that reached a final status.",
            &[
                ("{status=\"succeeded\"}", load(&self.computations_succeeded)),
                ("{status=\"failed\"}", load(&self.computations_failed)),
            ],
        );
        let rejected: Vec<(String, u64)> = Rejection::ALL
            .iter()
            .map(|r| (format!("{{reason=\"{}\"}}", r.label()), self.rejected(*r)))
            .collect();
        let rejected: Vec<(&str, u64)> = rejected.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        counter(
            "fsc_messages_rejected_total",
            "Messages dropped unapplied, by reason.",
            &rejected,
        );
        let refusals: Vec<(String, u64)> = Rule::ALL
            .iter()
            .zip(&self.policy_refusals)
            .map(|(rule, count)| (format!("{{rule=\"{}\"}}", rule.token()), load(count)))
            .collect();
        let refusals: Vec<(&str, u64)> = refusals.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        counter(
            "fsc_policy_refusals_total",
            "Computations this node's policy refused, by rule (failed here and at every party with policy_refused).",
            &refusals,
        );
        let failures: Vec<(String, u64)> = self
            .failures
            .snapshot()
            .into_iter()
            .map(|(labels, count)| (labels, count.load(Ordering::Relaxed)))
            .collect();
        let failures: Vec<(&str, u64)> = failures.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        counter(
            "fsc_computations_failed_total",
            "Computations that failed here, by reason (their error's code).",
            &failures,
        );
        counter(
            "fsc_http_connections_refused_total",
            "HTTP connections that found no room, by reason (a health check may still be answered on them).",
            &[
                ("{reason=\"max_connections\"}", load(&self.http_refused_max_connections)),
                ("{reason=\"per_address\"}", load(&self.http_refused_per_address)),
            ],
        );
        let unlabelled: [(&str, &str, &AtomicU64); 14] = [
            (
                "fsc_computations_submitted_total",
                "Computations submitted by local clients.",
                &self.computations_submitted,
            ),
            (
                "fsc_messages_sent_total",
                "Messages committed to the outbox.",
                &self.messages_sent,
            ),
            (
                "fsc_messages_received_total",
                "Authenticated messages stored.",
                &self.messages_received,
            ),
            (
                "fsc_messages_duplicate_total",
                "Redelivered or replayed messages ignored.",
                &self.messages_duplicate,
            ),
            (
                "fsc_messages_late_total",
                "Messages for computations already final here.",
                &self.messages_late,
            ),
            (
                "fsc_receipts_sent_total",
                "Receipt signatures committed to the outbox, one per other participant of a computation that ended here.",
                &self.receipts_sent,
            ),
            (
                "fsc_receipts_received_total",
                "Peers' receipt signatures stored.",
                &self.receipts_received,
            ),
            (
                "fsc_invites_sent_total",
                "Invites with a computation's definition sent to parties it had not reached while it waited for them (counted among the messages sent too).",
                &self.invites_sent,
            ),
            (
                "fsc_store_batches_total",
                "Store transactions committed.",
                &self.store_batches,
            ),
            (
                "fsc_store_batch_failures_total",
                "Store transactions rolled back.",
                &self.store_batch_failures,
            ),
            (
                "fsc_publish_retries_total",
                "Broker publishes retried.",
                &self.publish_retries,
            ),
            (
                "fsc_stream_full_total",
                "Times a recipient's stream was found full (its messages then wait here, the others' go on).",
                &self.stream_full_episodes,
            ),
            (
                "fsc_broker_messages_published_total",
                "Broker messages the stream stored: a bundle of messages, or a chunk of one, counts once.",
                &self.broker_messages_published,
            ),
            (
                "fsc_inbox_consumer_created_total",
                "Inbox consumers created on the broker: one at start, one each time the broker had lost it.",
                &self.inbox_consumers_created,
            ),
        ];
        for (name, help, value) in unlabelled {
            counter(name, help, &[("", load(value))]);
        }
        let mut gauge = |name: &str, help: &str, value: i64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        };
        gauge(
            "fsc_computations_active",
            "Computations pending or running.",
            self.computations_active.load(Ordering::Relaxed),
        );
        gauge(
            "fsc_outbox_pending",
            "Messages waiting for the broker's acknowledgement.",
            self.outbox_pending.load(Ordering::Relaxed),
        );
        let full = self.full_streams();
        gauge(
            "fsc_streams_full",
            "Recipients whose stream is full now: messages to them wait here.",
            full.len() as i64,
        );
        gauge(
            "fsc_stream_full_waiting_messages",
            "Messages waiting here for recipients whose stream is full.",
            full.values().map(|f| f.waiting as i64).sum(),
        );
        gauge(
            "fsc_chunks_pending_bytes",
            "Bytes of received chunks waiting for the rest of their messages.",
            self.chunk_bytes.load(Ordering::Relaxed),
        );
        gauge(
            "fsc_broker_connected",
            "1 if the broker connection is up.",
            self.broker_connected.load(Ordering::Relaxed) as i64,
        );
        gauge(
            "fsc_representations",
            "Federatedsecure API representations held.",
            self.representations.load(Ordering::Relaxed),
        );
        gauge(
            "fsc_representation_bytes",
            "Bytes of data the federatedsecure API holds (representations, task inputs, Sync/Util values).",
            self.representation_bytes.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP fsc_peer_last_seen_timestamp_seconds When an authenticated message of the peer last arrived.\n\
             # TYPE fsc_peer_last_seen_timestamp_seconds gauge"
        );
        for (peer, at) in self.peers_seen() {
            let seconds = at
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            let _ = writeln!(
                out,
                "fsc_peer_last_seen_timestamp_seconds{{peer=\"{peer}\"}} {seconds:.3}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labels_stay_bounded() {
        let metrics = Metrics::default();
        metrics.computation_finished("SecureSum", None, 0.003);
        metrics.computation_finished("SecureSum", None, 2.0);
        metrics.computation_finished("SecureMedian", Some("a peer's own code"), 7200.0);
        metrics.computation_finished("NoSuchProtocol", Some("unknown_microprotocol"), 0.0);
        metrics.http_request("GET", "/v1/computations/{id}", 200, 0.02);
        metrics.policy_refused(Rule::MinTotalSamples);
        metrics.policy_refused(Rule::MinTotalSamples);
        let text = metrics.render();
        let ok = "microprotocol=\"SecureSum\",outcome=\"succeeded\"";
        for line in [
            format!("fsc_computation_duration_seconds_bucket{{{ok},le=\"0.005\"}} 1"),
            format!("fsc_computation_duration_seconds_bucket{{{ok},le=\"1\"}} 1"),
            format!("fsc_computation_duration_seconds_bucket{{{ok},le=\"2.5\"}} 2"),
            format!("fsc_computation_duration_seconds_bucket{{{ok},le=\"+Inf\"}} 2"),
            format!("fsc_computation_duration_seconds_sum{{{ok}}} 2.003"),
            format!("fsc_computation_duration_seconds_count{{{ok}}} 2"),
            "fsc_computation_duration_seconds_bucket{microprotocol=\"SecureMedian\",outcome=\"failed\",le=\"3600\"} 0".into(),
            "fsc_computation_duration_seconds_bucket{microprotocol=\"SecureMedian\",outcome=\"failed\",le=\"+Inf\"} 1".into(),
            "fsc_computations_failed_total{reason=\"other\"} 1".into(),
            "fsc_computations_failed_total{reason=\"unknown_microprotocol\"} 1".into(),
            "fsc_policy_refusals_total{rule=\"min_total_samples\"} 2".into(),
            // Every rule has its series from the start, so that a rate over it is defined.
            "fsc_policy_refusals_total{rule=\"budget\"} 0".into(),
            "fsc_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/computations/{id}\",status=\"200\",le=\"0.025\"} 1".into(),
            format!("fsc_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION")),
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        // A microprotocol this node does not have never ran: no duration, and no label for it.
        assert!(
            !text.contains("NoSuchProtocol") && !text.contains("microprotocol=\"unknown\""),
            "{text}"
        );
    }
}
