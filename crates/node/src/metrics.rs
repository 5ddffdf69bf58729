//! Counters and gauges of one node, rendered in the Prometheus text format at `/metrics`.
//!
//! Plain atomics: updating a metric is one relaxed add on the hot path, with no registry and no
//! locks. This module only counts; it never decides anything.

use crate::envelope::Rejection;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::SystemTime;

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
    rejected: [AtomicU64; Rejection::ALL.len()],
    pub store_batches: AtomicU64,
    pub store_batch_failures: AtomicU64,
    pub publish_retries: AtomicU64,
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

    /// When each peer was last heard from; peers not heard from since the start are absent.
    pub fn peers_seen(&self) -> BTreeMap<String, SystemTime> {
        self.peers_seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
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
        let unlabelled: [(&str, &str, &AtomicU64); 8] = [
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
