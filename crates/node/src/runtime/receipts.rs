//! Receipts at the runtime (`crate::receipt`): a computation that ends here is signed in the
//! transaction that stores its outcome, and the signature is queued in the outbox for every other
//! party, published only after the result is released here (`after_commit`), so a receipt
//! costs the computation no round trip. Everything that ends in one batch is signed at once, one
//! Ed25519 signature per Merkle tree of up to 8 statements (`receipt::Signed::sign_all`), and
//! travels to each peer in one `receipt` message (up to [`MAX_SIGNATURES`]): a signature per 8
//! computations, and one seal, outbox row and open per peer and batch. A crash after
//! the commit leaves the messages in the outbox, re-published at start. Peers' signatures are
//! stored as they arrive, authenticated by their envelope, and checked against the roster when a
//! receipt is read (`GET /v1/computations/{id}/receipt`); they never touch the computation itself.

use super::*;
use crate::receipt::{Entry, Signed, Statement};
use crate::store::ReceiptRow;

/// Most signatures in one `receipt` message: up to about 500 bytes each (with their paths), so
/// that a message stays well within one broker message (never split into chunks).
const MAX_SIGNATURES: usize = 128;

/// A `receipt` message for one peer, filled while its batch runs and sealed before it commits.
pub(super) struct ReceiptMessage {
    to: String,
    /// What it is sealed under: the computation whose signature opened it and a sequence number
    /// of that computation's, so that its broker message id is unique like any other message's.
    computation: String,
    seq: i64,
    /// Places in `Batch::statements`.
    entries: Vec<usize>,
}

impl Runtime {
    /// Queues the receipt of `row`, final now, to be signed with the batch's others and sent to
    /// every other party (`seal_receipts`). A row without a definition (a tombstone) has nothing
    /// to sign, nor has a helper from outside the parties (it holds no output, see
    /// `crate::receipt::Receipt`).
    pub(super) fn sign_receipt(&mut self, row: &mut ComputationRow, batch: &mut Batch) {
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
        let place = batch.statements.len();
        batch.statements.push(statement);
        for peer in parties.iter().filter(|p| **p != self.me) {
            let open = batch
                .receipt_messages
                .iter()
                .rposition(|m| m.to == *peer && m.entries.len() < MAX_SIGNATURES);
            let index = open.unwrap_or_else(|| {
                batch.receipt_messages.push(ReceiptMessage {
                    to: peer.clone(),
                    computation: row.id.clone(),
                    seq: row.next_seq,
                    entries: Vec::new(),
                });
                row.next_seq += 1;
                batch.receipt_messages.len() - 1
            });
            batch.receipt_messages[index].entries.push(place);
        }
    }

    /// Signs the batch's statements, one signature for all, stores this node's signatures with
    /// the batch and seals its `receipt` messages into its receipt outbox.
    pub(super) fn seal_receipts(&mut self, now: i64, batch: &mut Batch) {
        let statements = std::mem::take(&mut batch.statements);
        let signed = self.envelopes.sign_receipts(&statements);
        for (statement, signed) in statements.iter().zip(&signed) {
            let id = statement.computation.to_string();
            batch.receipts.push(receipt_row(&id, &self.me, signed.clone(), now));
        }
        for message in std::mem::take(&mut batch.receipt_messages) {
            batch.receipts_sent += message.entries.len() as u64;
            let entries: Vec<Entry> = message
                .entries
                .iter()
                .map(|&place| Entry {
                    computation: statements[place].computation,
                    signed: signed[place].clone(),
                })
                .collect();
            let body = serde_json::to_vec(&entries).expect("receipts serialise");
            let (computation, to) = (&message.computation, &message.to);
            match seal_as(
                &self.envelopes,
                &mut self.rng,
                computation,
                message.seq,
                to,
                Kind::Receipt,
                &body,
                now,
            ) {
                Ok(row) => batch.receipt_outbox.push(row),
                Err(error) => tracing::error!(%error, %to, "cannot seal a receipt"),
            }
        }
    }

    /// Stores the peers' receipt signatures, authenticated as their sender's by the envelope. A
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
        let mut received = Vec::new();
        for message in receipts {
            match serde_json::from_slice::<Vec<Entry>>(&message.plaintext) {
                Ok(entries) => received.extend(entries.into_iter().map(|e| (message.header.from.clone(), e))),
                Err(_) => self.metrics.reject(Rejection::Malformed),
            }
        }
        let ids: Vec<String> = received
            .iter()
            .map(|(_, entry)| entry.computation)
            .filter(|id| !local(id, batch))
            .collect::<HashSet<_>>()
            .into_iter()
            .map(|id| id.to_string())
            .collect();
        let known: HashSet<String> = store::stored_computations(conn, &ids)?.into_iter().collect();
        let retired: HashSet<String> = store::retired(conn, &ids)?.into_iter().collect();
        let mut unsolicited: HashMap<String, u64> = HashMap::new();
        for (from, Entry { computation, signed }) in received {
            let id = computation.to_string();
            if retired.contains(&id) {
                tracing::debug!(%computation, %from, "receipt of a pruned computation dropped");
                Metrics::add(&self.metrics.messages_late, 1);
                continue;
            }
            let mut row = receipt_row(&id, &from, signed, now);
            row.unsolicited = !local(&computation, batch) && !known.contains(&id);
            if row.unsolicited
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
        path: signed.path.join(" "),
        received_at: now,
        unsolicited: false,
    }
}

/// What a row counts against its sender's quota: as `store::RECEIPT_BYTES` counts it.
fn receipt_bytes(row: &ReceiptRow) -> u64 {
    (row.definition_digest.len()
        + row.outcome.len()
        + row.outcome_digest.len()
        + row.key_id.len()
        + row.signature.len()
        + row.path.len()) as u64
}
