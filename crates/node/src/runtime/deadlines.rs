//! Deadlines: every computation ends, with one outcome at every party. Messages and chunks still
//! waiting after the longest deadline (for computations never submitted here, or messages never
//! completed) are expired, and finished computations are pruned after the retention (their ids
//! are kept as retired).
//!
//! A party whose deadline passes does not fail on its own: another party may already hold
//! everything it needs (our messages went out when our client submitted) and release a result.
//! It sends every other party an `expire` notice instead, and the decision falls to the parties
//! whose messages would complete the computation. A party whose client has not submitted fails
//! it for everybody (a signed abort, `deadline_exceeded`, naming itself), and a later submission
//! finds that failure; nobody can have completed without its messages. A party that has
//! submitted ignores the notice: its messages are on their way, and everybody completes. Its
//! node decides one way or the other atomically (a submission and a notice are applied in one
//! runtime, in order). If nothing comes (a party's node unreachable, a protocol stalled), the
//! computation fails here `stall_grace_s` later (`stalled`), which is the one case where parties
//! could end differently: a node that stayed away longer than that. See README, "Outcomes".

use super::*;

/// The sequence number of a party's `expire` notice, apart from its protocol messages (a long
/// step off the loop numbers those while it runs): one per computation and recipient, so a
/// notice sent again after a restart is a duplicate.
const EXPIRE_SEQ: i64 = i64::MAX;

/// What an `expire` notice carries: every participant, so that a party that has not joined can
/// tell them all.
#[derive(Serialize, serde::Deserialize)]
pub(super) struct ExpireNotice {
    pub parties: Vec<String>,
}

impl Runtime {
    /// Whether [`Runtime::expire`] has anything to do at `now`: a deadline passed, or a sweep is
    /// due.
    pub(super) fn expiry_due(&self, now: i64) -> bool {
        now >= self.next_sweep_at || self.active.values().any(|a| a.row.deadline_at <= now)
    }

    pub(super) fn expire(&mut self, conn: &Connection, now: i64, batch: &mut Batch) -> Result<(), Error> {
        let expired: Vec<Uuid> = self
            .active
            .iter()
            .filter(|(_, a)| a.row.deadline_at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if !self.active[&id].expiring {
                self.tell_expired(id, now, batch);
                continue;
            }
            let active = &self.active[&id];
            let heard: HashSet<String> = store::senders(conn, &id.to_string())?.into_iter().collect();
            let silent: Vec<&str> = active
                .parties
                .iter()
                .filter(|p| **p != self.me && !heard.contains(*p))
                .map(String::as_str)
                .collect();
            let message = if silent.is_empty() {
                format!(
                    "the deadline and {} s of grace passed before the protocol finished",
                    self.config.stall_grace_s
                )
            } else {
                format!(
                    "the deadline and {} s of grace passed; nothing was received from {}",
                    self.config.stall_grace_s,
                    silent.join(", ")
                )
            };
            let reason = AbortReason {
                code: "stalled".into(),
                message,
            };
            self.fail(id, Failure::ours(reason), now, batch);
        }
        if now >= self.next_sweep_at {
            // Nothing waits longer than the longest deadline (what nobody here submitted, longer
            // than max_unsolicited_s), nor stays longer than the retention; checked a tenth of
            // the shortest often.
            let max_deadline_ms = self.config.max_deadline_s as i64 * 1000;
            let unsolicited_ms = self.config.max_unsolicited_s as i64 * 1000;
            let retention_ms = self.config.retention_s as i64 * 1000;
            let audit_retention_ms = self.config.audit_retention_s.map_or(i64::MAX, |s| s as i64 * 1000);
            let shortest = max_deadline_ms
                .min(retention_ms)
                .min(unsolicited_ms)
                .min(audit_retention_ms);
            self.next_sweep_at = now + (shortest / 10).clamp(1000, 60_000);
            let dropped = store::expire_orphans(conn, now - unsolicited_ms, now - max_deadline_ms)?;
            if dropped > 0 {
                tracing::info!(
                    dropped,
                    "expired messages and chunks of computations not submitted here in time, or never completed"
                );
                batch.chunks_changed = true;
            }
            let pruned = store::prune(conn, now - retention_ms, store::PRUNE_BATCH)?;
            if pruned > 0 {
                tracing::info!(
                    pruned,
                    retention_s = self.config.retention_s,
                    "pruned finished computations"
                );
            }
            let mut more = pruned == store::PRUNE_BATCH as u64;
            if let Some(audit_retention_s) = self.config.audit_retention_s {
                let cutoff = now - audit_retention_s as i64 * 1000;
                let pruned = audit::prune(conn, cutoff, store::PRUNE_BATCH)?;
                if pruned > 0 {
                    tracing::info!(pruned, audit_retention_s, "pruned audit entries");
                }
                more |= pruned == store::PRUNE_BATCH as u64;
            }
            if more {
                // More are due: the next sweep comes at the next tick, not a minute later.
                self.next_sweep_at = now;
            }
        }
        Ok(())
    }

    /// The deadline of `id` passed: tells every other party, and waits `stall_grace_s` more.
    fn tell_expired(&mut self, id: Uuid, now: i64, batch: &mut Batch) {
        let active = self.active.get_mut(&id).expect("an active computation");
        active.expiring = true;
        active.row.deadline_at = now + self.config.stall_grace_s as i64 * 1000;
        batch.touched.insert(id);
        let notice = serde_json::to_vec(&ExpireNotice {
            parties: active.parties.clone(),
        })
        .expect("notices serialise");
        for peer in active.parties.iter().filter(|p| **p != self.me) {
            match seal_as(
                &self.envelopes,
                &mut self.rng,
                &active.row.id,
                EXPIRE_SEQ,
                peer,
                Kind::Expire,
                &notice,
                now,
            ) {
                Ok(message) => batch.outbox.push(message),
                Err(error) => tracing::error!(%error, %peer, "cannot seal an expire notice"),
            }
        }
    }

    /// A party's deadline passed for a computation no client here has submitted: it fails for
    /// everybody, and this node's client finds the failure if it submits later.
    pub(super) fn refuse_late(&mut self, id: Uuid, sender: &str, body: &[u8], now: i64, batch: &mut Batch) {
        let Ok(notice) = serde_json::from_slice::<ExpireNotice>(body) else {
            tracing::warn!(computation = %id, %sender, "unreadable expire notice dropped");
            return;
        };
        let parties: Vec<String> = notice
            .parties
            .into_iter()
            .filter(|p| self.roster.party(p).is_some())
            .collect();
        if !parties.contains(&self.me) || !parties.iter().any(|p| p == sender) {
            tracing::warn!(computation = %id, %sender, "expire notice for other parties dropped");
            return;
        }
        let mut row = tombstone_row(id, now);
        let reason = AbortReason {
            code: "deadline_exceeded".into(),
            message: format!(
                "{sender}'s deadline passed before a client of {} submitted the computation",
                self.me
            ),
        };
        let failure = Failure {
            reason,
            culprit: Some(self.me.clone()),
            announce: Announce::Yes,
            rule: None,
        };
        self.settle_failed(&mut row, &parties, failure, now, batch);
        batch.settled.insert(id, row);
        batch.finished.push(id);
    }
}
