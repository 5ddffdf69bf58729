//! What an operator sees of each computation: one log line when it starts here and one when it
//! ends (at WARN if it failed), with the API client that submitted it, and its duration and
//! outcome in the metrics (and this node's policy refusals, by rule). Reported after the commit, from the committed rows, so the log never
//! tells of a step the store lost. The audit log's entries for the same starts and ends are made
//! here too, before the commit, in the batch's transaction ([`Runtime::audit_computations`]).

use super::*;

impl Runtime {
    /// Logs and counts the computations `batch` started and finished.
    pub(super) fn report(&self, batch: &Batch) {
        for id in &batch.started {
            let row = self.active.get(id).map(|a| &a.row).or_else(|| batch.settled.get(id));
            if let Some(row) = row {
                let parties = parties_of(row);
                let role = if parties.split(',').any(|p| p == self.me) {
                    "party"
                } else {
                    "helper"
                };
                tracing::info!(
                    computation = %row.id,
                    microprotocol = row.microprotocol.as_deref().unwrap_or_default(),
                    %parties,
                    role,
                    client = row.client.as_deref(),
                    "computation started"
                );
            }
        }
        for row in batch.finished.iter().filter_map(|id| batch.settled.get(id)) {
            self.report_finished(row);
        }
    }

    fn report_finished(&self, row: &ComputationRow) {
        let error: Value = row
            .error
            .as_deref()
            .and_then(|e| serde_json::from_str(e).ok())
            .unwrap_or_default();
        let reason = error["code"].as_str();
        let detail = error["message"].as_str();
        let culprit = error["party"].as_str();
        let Some(microprotocol) = row.microprotocol.as_deref() else {
            tracing::warn!(
                computation = %row.id,
                outcome = "failed",
                reason,
                detail,
                party = culprit,
                "computation aborted by another party before it was submitted here"
            );
            return;
        };
        let duration_ms = row.finished_at.unwrap_or(row.created_at) - row.created_at;
        let parties = parties_of(row);
        let seconds = duration_ms as f64 / 1000.0;
        // Two events, as tracing's levels are fixed per call site.
        if row.status == store::SUCCEEDED {
            tracing::info!(
                computation = %row.id,
                microprotocol,
                %parties,
                duration_ms,
                outcome = "succeeded",
                client = row.client.as_deref(),
                "computation finished"
            );
            self.metrics.computation_finished(microprotocol, None, seconds);
        } else {
            tracing::warn!(
                computation = %row.id,
                microprotocol,
                %parties,
                duration_ms,
                outcome = "failed",
                reason,
                detail,
                party = culprit,
                client = row.client.as_deref(),
                "computation finished"
            );
            self.metrics
                .computation_finished(microprotocol, Some(reason.unwrap_or("internal")), seconds);
            // This node's own refusal names no party; a peer's names the peer.
            let rule = error["rule"].as_str().and_then(Rule::from_token);
            if let (Some("policy_refused"), None, Some(rule)) = (reason, culprit, rule) {
                self.metrics.policy_refused(rule);
            }
        }
    }
}

impl Runtime {
    /// Audit entries for the computations `batch` started and finished: the definition's
    /// digest, parties and microprotocol, the outcome and reason code, and the submitting client
    /// (none for a helper's computation or a peer's abort before any client here submitted).
    pub(super) fn audit_computations(&self, batch: &mut Batch) {
        let mut events = Vec::with_capacity(batch.started.len() + batch.finished.len());
        for id in &batch.started {
            let row = self.active.get(id).map(|a| &a.row).or_else(|| batch.settled.get(id));
            if let Some(row) = row {
                let detail = json!({
                    "microprotocol": row.microprotocol,
                    "parties": parties_list(row),
                    "digest": row.digest.as_deref().map(audit::hex),
                });
                events.push(Event::new(
                    row.client.as_deref(),
                    audit::COMPUTATION_STARTED,
                    Some(row.id.clone()),
                    detail,
                ));
            }
        }
        for row in batch.finished.iter().filter_map(|id| batch.settled.get(id)) {
            let error: Value = row
                .error
                .as_deref()
                .and_then(|e| serde_json::from_str(e).ok())
                .unwrap_or_default();
            // The reason's code, party and rule, never its message (it may quote an input).
            let detail = json!({
                "microprotocol": row.microprotocol,
                "parties": parties_list(row),
                "digest": row.digest.as_deref().map(audit::hex),
                "outcome": row.status,
                "reason": error.get("code"),
                "party": error.get("party"),
                "rule": error.get("rule"),
            });
            events.push(Event::new(
                row.client.as_deref(),
                audit::COMPUTATION_FINISHED,
                Some(row.id.clone()),
                detail,
            ));
        }
        batch.audit.extend(events);
    }
}

fn parties_list(row: &ComputationRow) -> Vec<String> {
    row.parties
        .as_deref()
        .and_then(|p| serde_json::from_str::<Vec<String>>(p).ok())
        .unwrap_or_default()
}

/// The row's parties, comma-separated.
fn parties_of(row: &ComputationRow) -> String {
    parties_list(row).join(",")
}
