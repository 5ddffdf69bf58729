//! Receipts at the runtime (`crate::receipt`): a computation that ends here is signed in the
//! transaction that stores its outcome, and the signature is queued in the outbox for every other
//! party, published only after the result is released here (`after_commit`), so a receipt
//! costs the computation no round trip. A crash after the commit leaves the messages in the
//! outbox, re-published at start. Peers' signatures are checked against the roster when their
//! message is opened (on the transport's tasks, off this loop) and stored here; they never touch
//! the computation itself.

use super::*;
use crate::receipt::{Signed, Statement};
use crate::store::ReceiptRow;

impl Runtime {
    /// Signs the receipt of `row`, final now, and queues it for every other party. A row
    /// without a definition (a tombstone) has nothing to sign, nor has a helper from outside the
    /// parties (it holds no output, see `crate::receipt::Receipt`).
    pub(super) fn sign_receipt(&mut self, row: &mut ComputationRow, now: i64, batch: &mut Batch) {
        let Some(statement) = Statement::of_row(row) else {
            return;
        };
        let parties: Vec<String> = row
            .parties
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_default();
        if !parties.contains(&self.me) {
            return;
        }
        let signed = self.envelopes.sign_receipt(&statement);
        let body = serde_json::to_vec(&signed).expect("receipts serialise");
        for peer in parties.iter().filter(|p| **p != self.me) {
            match enqueue(&self.envelopes, &mut self.rng, row, peer, Kind::Receipt, &body, now) {
                Ok(message) => batch.receipt_outbox.push(message),
                Err(error) => tracing::error!(%error, %peer, "cannot seal a receipt"),
            }
        }
        batch.receipts.push(receipt_row(&row.id, &self.me, signed, now));
    }

    /// Stores the peers' receipt signatures, verified against the roster as they were opened. A
    /// signature for a computation pruned here is late and dropped; one for a computation this
    /// node does not know (its client has not submitted yet, or never will) is kept within the
    /// sender's `max_unsolicited_bytes` and expires with its other unsolicited messages.
    pub(super) fn store_receipts(
        &mut self,
        conn: &Connection,
        receipts: Vec<Opened>,
        now: i64,
        batch: &mut Batch,
    ) -> Result<(), Error> {
        if receipts.is_empty() {
            return Ok(());
        }
        let local = |id: &Uuid, batch: &Batch| self.active.contains_key(id) || batch.settled.contains_key(id);
        let ids: Vec<String> = receipts
            .iter()
            .map(|m| m.header.computation)
            .filter(|id| !local(id, batch))
            .collect::<HashSet<_>>()
            .into_iter()
            .map(|id| id.to_string())
            .collect();
        let known: HashSet<String> = store::get_computations(conn, &ids)?.into_iter().map(|r| r.id).collect();
        let retired: HashSet<String> = store::retired(conn, &ids)?.into_iter().collect();
        let mut unsolicited: HashMap<String, u64> = HashMap::new();
        for message in receipts {
            let (computation, from) = (message.header.computation, message.header.from.clone());
            // Its signature was checked when it was opened (`Envelopes::open`).
            let Ok(signed) = serde_json::from_slice::<Signed>(&message.plaintext) else {
                self.metrics.reject(Rejection::Malformed);
                continue;
            };
            let id = computation.to_string();
            if retired.contains(&id) {
                tracing::debug!(%computation, %from, "receipt of a pruned computation dropped");
                Metrics::add(&self.metrics.messages_late, 1);
                continue;
            }
            let row = receipt_row(&id, &from, signed, now);
            if !local(&computation, batch)
                && !known.contains(&id)
                && !self.within_unsolicited_quota(conn, &mut unsolicited, computation, &from, receipt_bytes(&row))?
            {
                continue;
            }
            batch.receipts.push(row);
        }
        Ok(())
    }
}

fn receipt_row(computation: &str, party: &str, signed: Signed, now: i64) -> ReceiptRow {
    ReceiptRow {
        computation: computation.to_string(),
        party: party.to_string(),
        definition_digest: signed.definition_digest,
        outcome: signed.outcome.label().to_string(),
        outcome_digest: signed.outcome_digest,
        key_id: signed.key_id,
        signature: signed.signature,
        received_at: now,
    }
}

/// What a row counts against its sender's quota: as `store::RECEIPT_BYTES` counts it.
fn receipt_bytes(row: &ReceiptRow) -> u64 {
    (row.definition_digest.len()
        + row.outcome.len()
        + row.outcome_digest.len()
        + row.key_id.len()
        + row.signature.len()) as u64
}
