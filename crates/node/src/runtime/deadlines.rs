//! Deadlines: every computation ends. Computations past their deadline fail (naming the parties
//! never heard from), messages and chunks still waiting after the longest deadline (for
//! computations never submitted here, or messages never completed) are expired, and finished
//! computations are pruned after the retention (their ids are kept as retired).

use super::*;

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
            let active = &self.active[&id];
            let heard: HashSet<String> = store::senders(conn, &id.to_string())?.into_iter().collect();
            let silent: Vec<&str> = active
                .parties
                .iter()
                .filter(|p| **p != self.me && !heard.contains(*p))
                .map(String::as_str)
                .collect();
            let waited_s = (active.row.deadline_at - active.row.created_at) / 1000;
            let message = if silent.is_empty() {
                format!("deadline of {waited_s} s exceeded before the protocol finished")
            } else {
                format!(
                    "deadline of {waited_s} s exceeded; nothing was received from {}",
                    silent.join(", ")
                )
            };
            let reason = AbortReason {
                code: "deadline_exceeded".into(),
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
            let shortest = max_deadline_ms.min(retention_ms).min(unsolicited_ms);
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
            if pruned == store::PRUNE_BATCH as u64 {
                // More are due: the next sweep comes at the next tick, not a minute later.
                self.next_sweep_at = now;
            }
        }
        Ok(())
    }
}
