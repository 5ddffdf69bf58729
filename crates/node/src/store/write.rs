//! The one writing connection, the runtime's: every statement that changes the store.
//!
//! Its calls are synchronous (rusqlite) and made on the runtime's own thread, inside the `BEGIN
//! IMMEDIATE` transaction that covers a whole batch. A statement is then a function call: through
//! sqlx each one was a round trip to the connection's worker thread, two thread wake-ups that
//! cost 0.1 to 0.3 ms each on a busy machine, and the handful per batch were most of a lone
//! sum's time in the store. Writes are multi-row statements, so that a batch of thousands of
//! messages costs a handful of statements. This module knows rows, not protocols.

use super::rows::{
    AuditRow, ChargeRow, ChunkRow, ComputationRow, InboxRow, MessageKey, OutboxRow, ProposalRow, ReceiptRow, SpentRow,
};
use crate::error::Error;
use rusqlite::types::ToSql;
use rusqlite::{Connection, OpenFlags, Row, Statement, Transaction, TransactionBehavior, params, params_from_iter};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// Most rows per multi-row statement (at most 15 columns: far below SQLite's 32766 variables).
const ROWS_PER_STATEMENT: usize = 256;

/// Statements binding at most this many rows stay prepared in the connection's cache: a lone
/// computation's batches come in a few shapes, preparing them again each time would cost more
/// than running them, and those of many rows are few per row.
const KEPT_PREPARED_UP_TO_ROWS: usize = 16;

/// Splits `items` into slices of ROWS_PER_STATEMENT, then powers of two: so a multi-row statement
/// comes in at most nine shapes.
fn statement_chunks<T>(mut items: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if items.is_empty() {
            return None;
        }
        let size = if items.len() >= ROWS_PER_STATEMENT {
            ROWS_PER_STATEMENT
        } else {
            1 << items.len().ilog2()
        };
        let (chunk, rest) = items.split_at(size);
        items = rest;
        Some(chunk)
    })
}

/// The one writing connection.
pub struct Writer {
    conn: Connection,
}

impl Writer {
    /// Opens the (migrated) store at `path` for writing. The writer does not checkpoint the WAL
    /// itself (that would stall it, fsync included): a background task does, and the writer
    /// only once, when it is dropped.
    pub(super) fn open(path: &Path) -> Result<Writer, Error> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.set_prepared_statement_cache_capacity(64);
        conn.pragma_update(None, "journal_mode", "wal")?;
        conn.pragma_update(None, "synchronous", "normal")?;
        conn.pragma_update(None, "foreign_keys", "on")?;
        // 8 MiB of page cache: a batch of thousands of rows must not spill dirty pages
        // mid-transaction. Statement journals in memory: a multi-row insert journals the pages it
        // changes, in case it fails halfway, and in a temporary file those writes were a tenth of
        // a busy node's CPU.
        conn.pragma_update(None, "cache_size", -8192)?;
        conn.pragma_update(None, "temp_store", "memory")?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // When the writer starts the WAL over (everything in it copied), it cuts the file back to
        // this: without it the file keeps the largest size it ever had.
        conn.pragma_update(None, "journal_size_limit", super::WAL_LIMIT_BYTES)?;
        Ok(Writer { conn })
    }

    /// Starts a write transaction that holds the write lock from the start. Dropped without
    /// `commit`, it rolls back.
    pub fn begin(&mut self) -> Result<Transaction<'_>, Error> {
        Ok(self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }
}

impl Drop for Writer {
    /// A node that stops cleanly leaves an empty WAL: its last writes are copied into the
    /// database now (the background checkpointer's connection stays open to the end, so closing
    /// this one would not do it).
    fn drop(&mut self) {
        if let Err(error) = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            tracing::warn!(%error, "the WAL could not be emptied at shutdown");
        }
    }
}

/// Runs `run` on `sql` prepared, kept in the cache if it binds at most KEPT_PREPARED_UP_TO_ROWS
/// rows.
fn with_statement<T>(
    conn: &Connection,
    sql: &str,
    rows: usize,
    run: impl FnOnce(&mut Statement<'_>) -> rusqlite::Result<T>,
) -> Result<T, Error> {
    Ok(if rows <= KEPT_PREPARED_UP_TO_ROWS {
        run(&mut *conn.prepare_cached(sql)?)?
    } else {
        run(&mut conn.prepare(sql)?)?
    })
}

/// `<prefix>?, ?, ... )<suffix>` for `n` values.
fn in_list(prefix: &str, n: usize, suffix: &str) -> String {
    let mut sql = String::with_capacity(prefix.len() + 3 * n + suffix.len() + 1);
    sql.push_str(prefix);
    for i in 0..n {
        sql.push_str(if i == 0 { "?" } else { ", ?" });
    }
    sql.push(')');
    sql.push_str(suffix);
    sql
}

/// `VALUES (?, ...), ...` for `rows` rows of `columns` values.
fn values(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    format!("VALUES {}", vec![row; rows].join(", "))
}

/// Runs `<prefix> ?, ... )` for each slice of `ids`, collecting what `read` makes of the rows it
/// returns.
fn select_in<I: ToSql, T>(
    conn: &Connection,
    prefix: &str,
    ids: &[I],
    read: impl Fn(&Row<'_>) -> rusqlite::Result<T> + Copy,
) -> Result<Vec<T>, Error> {
    let mut found = Vec::new();
    for chunk in statement_chunks(ids) {
        with_statement(conn, &in_list(prefix, chunk.len(), ""), chunk.len(), |statement| {
            for row in statement.query_map(params_from_iter(chunk), read)? {
                found.push(row?);
            }
            Ok(())
        })?;
    }
    Ok(found)
}

/// Runs `<head> VALUES (?, ...), ... <tail>` for each slice of `rows`, binding the `fields` of
/// each row, and collects what `read` makes of the rows it returns (a `RETURNING` clause's).
fn insert_values<T, R, const N: usize>(
    conn: &Connection,
    head: &str,
    tail: &str,
    rows: &[T],
    fields: fn(&T) -> [&dyn ToSql; N],
    read: impl Fn(&Row<'_>) -> rusqlite::Result<R> + Copy,
) -> Result<Vec<R>, Error> {
    let mut returned = Vec::new();
    for chunk in statement_chunks(rows) {
        let sql = format!("{head} {} {tail}", values(chunk.len(), N));
        let bound: Vec<&dyn ToSql> = chunk.iter().flat_map(fields).collect();
        with_statement(conn, &sql, chunk.len(), |statement| {
            for row in statement.query_map(bound.as_slice(), read)? {
                returned.push(row?);
            }
            Ok(())
        })?;
    }
    Ok(returned)
}

/// Runs `<prefix> ?, ... )` for each slice of `ids`.
fn execute_in<I: ToSql>(conn: &Connection, prefix: &str, ids: &[I]) -> Result<(), Error> {
    for chunk in statement_chunks(ids) {
        with_statement(conn, &in_list(prefix, chunk.len(), ""), chunk.len(), |statement| {
            statement.execute(params_from_iter(chunk))
        })?;
    }
    Ok(())
}

impl ComputationRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<ComputationRow> {
        Ok(ComputationRow {
            id: row.get("id")?,
            microprotocol: row.get("microprotocol")?,
            parties: row.get("parties")?,
            parameters: row.get("parameters")?,
            digest: row.get("digest")?,
            status: row.get("status")?,
            machine: row.get("machine")?,
            next_seq: row.get("next_seq")?,
            output: row.get("output")?,
            error: row.get("error")?,
            deadline_at: row.get("deadline_at")?,
            created_at: row.get("created_at")?,
            finished_at: row.get("finished_at")?,
            network: row.get("network")?,
            client: row.get("client")?,
            dataset: row.get("dataset")?,
        })
    }
}

impl InboxRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<InboxRow> {
        Ok(InboxRow {
            computation: row.get("computation")?,
            sender: row.get("sender")?,
            seq: row.get("seq")?,
            kind: row.get("kind")?,
            body: row.get("body")?,
            received_at: row.get("received_at")?,
            body_in_chunks: row.get("body_in_chunks")?,
        })
    }
}

impl OutboxRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<OutboxRow> {
        Ok(OutboxRow {
            id: row.get("id")?,
            computation: row.get("computation")?,
            recipient: row.get("recipient")?,
            seq: row.get("seq")?,
            envelope: row.get("envelope")?,
            created_at: row.get("created_at")?,
        })
    }
}

impl ChunkRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<ChunkRow> {
        Ok(ChunkRow {
            computation: row.get("computation")?,
            sender: row.get("sender")?,
            seq: row.get("seq")?,
            idx: row.get("idx")?,
            total: row.get("total")?,
            data: row.get("data")?,
            received_at: row.get("received_at")?,
        })
    }
}

fn message_key(row: &Row<'_>) -> rusqlite::Result<MessageKey> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

/// Those of `ids` that exist.
pub fn get_computations(conn: &Connection, ids: &[String]) -> Result<Vec<ComputationRow>, Error> {
    select_in(
        conn,
        "SELECT * FROM computations WHERE id IN (",
        ids,
        ComputationRow::read,
    )
}

/// Computations that are not final and not tombstones: what the runtime resumes after a restart.
pub fn active_computations(conn: &Connection) -> Result<Vec<ComputationRow>, Error> {
    let mut statement = conn
        .prepare("SELECT * FROM computations WHERE status IN ('pending', 'running') AND microprotocol IS NOT NULL")?;
    let rows = statement.query_map([], ComputationRow::read)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Inserts inbox rows; returns the keys of those that were new (the others are duplicates).
pub fn insert_inbox(conn: &Connection, rows: &[InboxRow]) -> Result<Vec<MessageKey>, Error> {
    insert_values(
        conn,
        "INSERT INTO inbox (computation, sender, seq, kind, body, received_at, body_in_chunks)",
        "ON CONFLICT DO NOTHING RETURNING computation, sender, seq",
        rows,
        |row| {
            [
                &row.computation,
                &row.sender,
                &row.seq,
                &row.kind,
                &row.body,
                &row.received_at,
                &row.body_in_chunks,
            ]
        },
        message_key,
    )
}

/// Messages that arrived before these computations were submitted here, in arrival order.
pub fn pending_inbox(conn: &Connection, computations: &[String]) -> Result<Vec<InboxRow>, Error> {
    let mut found = select_in(
        conn,
        "SELECT * FROM inbox WHERE body IS NOT NULL AND computation IN (",
        computations,
        InboxRow::read,
    )?;
    // One order across the statements of a long list.
    found.sort_by(|a, b| {
        (a.received_at, &a.computation, &a.sender, a.seq).cmp(&(b.received_at, &b.computation, &b.sender, b.seq))
    });
    Ok(found)
}

/// Of these ids of computations not active here: those retired (pruned after the retention), and
/// those with messages waiting for their submission here. One query for both: every submission
/// asks.
pub fn retired_and_waiting(conn: &Connection, ids: &[String]) -> Result<(Vec<String>, Vec<String>), Error> {
    let (mut retired, mut waiting) = (Vec::new(), Vec::new());
    for chunk in statement_chunks(ids) {
        let sql = in_list(
            "SELECT 1, id FROM retired WHERE id IN (",
            chunk.len(),
            &in_list(
                " UNION ALL SELECT DISTINCT 0, computation FROM inbox WHERE body IS NOT NULL AND computation IN (",
                chunk.len(),
                "",
            ),
        );
        let found = with_statement(conn, &sql, chunk.len(), |statement| {
            statement
                .query_map(params_from_iter(chunk.iter().chain(chunk)), |row| {
                    Ok((row.get::<_, bool>(0)?, row.get::<_, String>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()
        })?;
        for (is_retired, id) in found {
            if is_retired { &mut retired } else { &mut waiting }.push(id);
        }
    }
    Ok((retired, waiting))
}

/// Which of `ids` are stored here (their ids only: a receipt needs no more of its computation).
pub fn stored_computations(conn: &Connection, ids: &[String]) -> Result<Vec<String>, Error> {
    select_in(conn, "SELECT id FROM computations WHERE id IN (", ids, |row| row.get(0))
}

/// Which of these ids belonged to computations pruned after the retention.
pub fn retired(conn: &Connection, ids: &[String]) -> Result<Vec<String>, Error> {
    select_in(conn, "SELECT id FROM retired WHERE id IN (", ids, |row| row.get(0))
}

/// Marks single inbox rows as consumed (the messages a long engine step has applied).
pub fn consume_messages(conn: &Connection, keys: &[MessageKey]) -> Result<(), Error> {
    for_each_message(
        conn,
        keys,
        &[
            "UPDATE inbox SET body = NULL, body_in_chunks = 0 WHERE computation = ?1 AND sender = ?2 AND seq = ?3",
            "DELETE FROM chunks WHERE computation = ?1 AND sender = ?2 AND seq = ?3",
        ],
    )
}

/// Deletes the chunks of messages that were reassembled but whose bodies are not kept (consumed
/// at once, duplicates, rejected), unless they hold the body of a pending inbox row.
pub fn discard_chunks(conn: &Connection, keys: &[MessageKey]) -> Result<(), Error> {
    for_each_message(
        conn,
        keys,
        &[
            "DELETE FROM chunks WHERE computation = ?1 AND sender = ?2 AND seq = ?3 AND NOT EXISTS \
           (SELECT 1 FROM inbox WHERE computation = ?1 AND sender = ?2 AND seq = ?3 AND body_in_chunks = 1)",
        ],
    )
}

/// Runs `statements` for each message key, bound as `?1` (computation), `?2` (sender), `?3` (seq).
fn for_each_message(conn: &Connection, keys: &[MessageKey], statements: &[&str]) -> Result<(), Error> {
    for (computation, sender, seq) in keys {
        for statement in statements {
            conn.prepare_cached(statement)?
                .execute(params![computation, sender, seq])?;
        }
    }
    Ok(())
}

/// The sealed message that a pending inbox row keeps in its chunks, reassembled.
pub fn message_in_chunks(conn: &Connection, (computation, sender, seq): &MessageKey) -> Result<Vec<u8>, Error> {
    let mut statement =
        conn.prepare_cached("SELECT data FROM chunks WHERE computation = ? AND sender = ? AND seq = ? ORDER BY idx")?;
    let parts = statement.query_map(params![computation, sender, seq], |row| row.get::<_, Vec<u8>>(0))?;
    Ok(parts.collect::<Result<Vec<_>, _>>()?.concat())
}

/// The parties that have sent anything for a computation.
pub fn senders(conn: &Connection, computation: &str) -> Result<Vec<String>, Error> {
    let mut statement = conn.prepare_cached("SELECT DISTINCT sender FROM inbox WHERE computation = ?")?;
    let senders = statement.query_map([computation], |row| row.get(0))?;
    Ok(senders.collect::<Result<_, _>>()?)
}

/// Drops messages, chunks and receipt signatures for computations never submitted here that came before
/// `unsolicited`, and every chunk older than `cutoff` (the longest deadline: its message can no
/// longer complete in time).
pub fn expire_orphans(conn: &Connection, unsolicited: i64, cutoff: i64) -> Result<u64, Error> {
    let inbox = conn
        .prepare_cached(&format!(
            "DELETE FROM inbox WHERE body IS NOT NULL AND received_at < ? AND {UNSOLICITED}"
        ))?
        .execute([unsolicited])?;
    let chunks = conn
        .prepare_cached(&format!(
            "DELETE FROM chunks WHERE received_at < ? OR (received_at < ? AND {UNSOLICITED})"
        ))?
        .execute([cutoff, unsolicited])?;
    let receipts = conn
        .prepare_cached(&format!(
            "DELETE FROM receipts WHERE unsolicited = 1 AND received_at < ? AND {UNSOLICITED}"
        ))?
        .execute([unsolicited])?;
    // A proposal whose computation exists here now is no longer one.
    let proposals = conn
        .prepare_cached(&format!(
            "DELETE FROM proposals WHERE received_at < ? OR NOT ({UNSOLICITED})"
        ))?
        .execute([unsolicited])?;
    Ok((inbox + chunks + receipts + proposals) as u64)
}

/// What a stored proposal counts against its proposer's quota (`ProposalRow::bytes`).
pub const PROPOSAL_BYTES: &str = "length(microprotocol) + length(parties) + length(parameters)";

/// Stores proposals; the first of a computation stands.
pub fn insert_proposals(conn: &Connection, rows: &[ProposalRow]) -> Result<(), Error> {
    insert_values(
        conn,
        "INSERT INTO proposals (computation, proposer, microprotocol, parties, parameters, deadline_at, received_at)",
        "ON CONFLICT DO NOTHING",
        rows,
        |row| {
            [
                &row.computation,
                &row.proposer,
                &row.microprotocol,
                &row.parties,
                &row.parameters,
                &row.deadline_at,
                &row.received_at,
            ]
        },
        |_| Ok(()),
    )?;
    Ok(())
}

/// Deletes the proposals of these computations.
pub fn delete_proposals(conn: &Connection, computations: &[String]) -> Result<(), Error> {
    execute_in(conn, "DELETE FROM proposals WHERE computation IN (", computations)
}

/// The proposal of computation `id`, if it is still one (no computation of that id here).
pub fn proposal(conn: &Connection, id: &str) -> Result<Option<ProposalRow>, Error> {
    let sql = format!("SELECT * FROM proposals WHERE computation = ? AND {UNSOLICITED}");
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query_map([id], |row| {
        Ok(ProposalRow {
            computation: row.get("computation")?,
            proposer: row.get("proposer")?,
            microprotocol: row.get("microprotocol")?,
            parties: row.get("parties")?,
            parameters: row.get("parameters")?,
            deadline_at: row.get("deadline_at")?,
            received_at: row.get("received_at")?,
        })
    })?;
    Ok(rows.next().transpose()?)
}

/// What a stored receipt signature counts against its sender's quota.
pub const RECEIPT_BYTES: &str = "length(definition_digest) + length(outcome) + length(outcome_digest) + length(key_id) + length(signature) + length(path)";

/// A row of a computation that no client here has submitted (nor a party invited this node to).
const UNSOLICITED: &str = "computation NOT IN (SELECT id FROM computations)";

/// Bytes a sender has stored here for computations not submitted here: waiting messages and
/// chunks, complete or not, receipt signatures and proposals.
pub fn unsolicited_bytes(conn: &Connection, sender: &str) -> Result<i64, Error> {
    let sql = format!(
        "SELECT (SELECT COALESCE(SUM(length(data)), 0) FROM chunks WHERE sender = ?1 AND {UNSOLICITED}) + \
         (SELECT COALESCE(SUM(length(body)), 0) FROM inbox WHERE sender = ?1 AND body IS NOT NULL AND {UNSOLICITED}) + \
         (SELECT COALESCE(SUM({RECEIPT_BYTES}), 0) FROM receipts WHERE party = ?1 AND unsolicited = 1 AND {UNSOLICITED}) + \
         (SELECT COALESCE(SUM({PROPOSAL_BYTES}), 0) FROM proposals WHERE proposer = ?1 AND {UNSOLICITED})"
    );
    Ok(conn.prepare_cached(&sql)?.query_row([sender], |row| row.get(0))?)
}

/// Inserts or replaces whole computation rows. An active row without a `machine` keeps the
/// stored state (a long step's state is large and unchanged until its next step); a final row
/// drops it.
pub fn upsert_computations(conn: &Connection, rows: &[&ComputationRow]) -> Result<(), Error> {
    insert_values(
        conn,
        "INSERT INTO computations (id, microprotocol, parties, parameters, digest, status, machine, \
         next_seq, output, error, deadline_at, created_at, finished_at, network, client, dataset)",
        "ON CONFLICT (id) DO UPDATE SET microprotocol = excluded.microprotocol, parties = excluded.parties, \
         parameters = excluded.parameters, digest = excluded.digest, \
         status = excluded.status, \
         machine = CASE WHEN excluded.status IN ('pending', 'running') \
             THEN COALESCE(excluded.machine, computations.machine) END, next_seq = excluded.next_seq, \
         output = excluded.output, error = excluded.error, deadline_at = excluded.deadline_at, \
         finished_at = excluded.finished_at, network = excluded.network, client = excluded.client, \
         dataset = excluded.dataset",
        rows,
        |row| {
            [
                &row.id,
                &row.microprotocol,
                &row.parties,
                &row.parameters,
                &row.digest,
                &row.status,
                &row.machine,
                &row.next_seq,
                &row.output,
                &row.error,
                &row.deadline_at,
                &row.created_at,
                &row.finished_at,
                &row.network,
                &row.client,
                &row.dataset,
            ]
        },
        |_| Ok(()),
    )?;
    Ok(())
}

/// Marks the pending messages of these computations as consumed (their bodies are not needed).
pub fn consume_inbox(conn: &Connection, computations: &[String]) -> Result<(), Error> {
    // Only the chunks that hold a pending message's body: others may be part of a message still
    // arriving.
    execute_in(
        conn,
        &format!("DELETE FROM chunks WHERE {HOLDS_PENDING_BODY} AND computation IN ("),
        computations,
    )?;
    execute_in(
        conn,
        "UPDATE inbox SET body = NULL, body_in_chunks = 0 WHERE computation IN (",
        computations,
    )
}

/// Forgets the inbox (and any chunks) of finished computations.
pub fn delete_inbox(conn: &Connection, computations: &[String]) -> Result<(), Error> {
    execute_in(conn, "DELETE FROM inbox WHERE computation IN (", computations)?;
    execute_in(conn, "DELETE FROM chunks WHERE computation IN (", computations)
}

/// Removes published rows.
pub fn delete_outbox(conn: &Connection, ids: &[i64]) -> Result<(), Error> {
    execute_in(conn, "DELETE FROM outbox WHERE id IN (", ids)
}

/// The largest value (text or blob) `conn` stores, SQLite's length limit: 1e9 bytes as
/// libsqlite3-sys builds it. A state or message beyond it fails the whole transaction.
pub fn max_value_bytes(conn: &Connection) -> usize {
    usize::try_from(conn.limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH)).unwrap_or(0)
}

/// Bytes of one part of a value stored in parts (an outbox message in `outbox_parts`, a bulk
/// in `bulk_parts`), and the largest envelope stored whole: well inside the length limit, which
/// also bounds a whole statement.
fn part_bytes(conn: &Connection) -> usize {
    (max_value_bytes(conn) / 4).max(1)
}

/// Inserts `value` in parts of [`part_bytes`] with `statement`, which takes its key, the part's
/// index and the part.
fn insert_parts(conn: &Connection, statement: &mut Statement<'_>, key: &dyn ToSql, value: &[u8]) -> Result<(), Error> {
    for (idx, part) in value.chunks(part_bytes(conn)).enumerate() {
        statement.execute(params![key, idx as i64, part])?;
    }
    Ok(())
}

/// Appends to `value` the parts that `statement` selects, in order, for `key`.
fn join_parts(statement: &mut Statement<'_>, key: &dyn ToSql, value: &mut Vec<u8>) -> Result<(), Error> {
    for part in statement.query_map([key], |part| part.get::<_, Vec<u8>>(0))? {
        value.extend(part?);
    }
    Ok(())
}

/// Appends rows to the outbox and sets their ids (their position in the outbox queue). An
/// envelope beyond [`part_bytes`] goes into `outbox_parts` instead of its row.
pub fn insert_outbox(conn: &Connection, rows: &mut [OutboxRow]) -> Result<(), Error> {
    let part_bytes = part_bytes(conn);
    let in_parts = |row: &OutboxRow| row.envelope.len() > part_bytes;
    // Run by run, so that the ids keep the rows' order.
    for run in rows.chunk_by_mut(|a, b| in_parts(a) == in_parts(b)) {
        if !in_parts(&run[0]) {
            insert_outbox_rows(conn, run, |row| {
                [
                    &row.computation,
                    &row.recipient,
                    &row.seq,
                    &row.envelope,
                    &row.created_at,
                    &false,
                ]
            })?;
            continue;
        }
        const NOTHING: &[u8] = &[];
        insert_outbox_rows(conn, run, |row| {
            [
                &row.computation,
                &row.recipient,
                &row.seq,
                &NOTHING,
                &row.created_at,
                &true,
            ]
        })?;
        let mut statement = conn.prepare_cached("INSERT INTO outbox_parts (outbox, idx, data) VALUES (?, ?, ?)")?;
        for row in run.iter() {
            insert_parts(conn, &mut statement, &row.id, &row.envelope)?;
        }
    }
    Ok(())
}

/// Stores computation `id`'s bulk (`fsc_simon::Machine::bulk`), in parts of [`part_bytes`]: it
/// may be larger than one value may be. Written once, when the machine first has it; the
/// triggers of `bulk_parts` delete it when the computation ends.
pub fn insert_bulk(conn: &Connection, id: &str, bulk: &[u8]) -> Result<(), Error> {
    conn.prepare_cached("DELETE FROM bulk_parts WHERE computation = ?")?
        .execute([id])?;
    let mut statement = conn.prepare_cached("INSERT INTO bulk_parts (computation, idx, data) VALUES (?, ?, ?)")?;
    insert_parts(conn, &mut statement, &id, bulk)
}

/// Computation `id`'s bulk, as [`insert_bulk`] stored it (empty if none is stored).
pub fn bulk(conn: &Connection, id: &str) -> Result<Vec<u8>, Error> {
    let mut bulk = Vec::new();
    let mut parts = conn.prepare_cached("SELECT data FROM bulk_parts WHERE computation = ? ORDER BY idx")?;
    join_parts(&mut parts, &id, &mut bulk)?;
    Ok(bulk)
}

/// Inserts `rows` with the `fields` given (their envelopes, or none if they go in parts) and
/// sets their ids.
fn insert_outbox_rows(
    conn: &Connection,
    rows: &mut [OutboxRow],
    fields: fn(&OutboxRow) -> [&dyn ToSql; 6],
) -> Result<(), Error> {
    // RETURNING gives the rows in no promised order: ids are matched by message.
    let ids: HashMap<(String, String, i64), i64> = insert_values(
        conn,
        "INSERT INTO outbox (computation, recipient, seq, envelope, created_at, in_parts)",
        "RETURNING id, computation, recipient, seq",
        rows,
        fields,
        |row| Ok(((row.get(1)?, row.get(2)?, row.get(3)?), row.get(0)?)),
    )?
    .into_iter()
    .collect();
    for row in rows {
        row.id = ids[&(row.computation.clone(), row.recipient.clone(), row.seq)];
    }
    Ok(())
}

/// The outbox in queue order, envelopes stored in parts joined again.
pub fn all_outbox(conn: &Connection) -> Result<Vec<OutboxRow>, Error> {
    let mut statement = conn.prepare("SELECT * FROM outbox ORDER BY created_at, id")?;
    let mut rows = statement
        .query_map([], |row| Ok((OutboxRow::read(row)?, row.get::<_, bool>("in_parts")?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut parts = conn.prepare("SELECT data FROM outbox_parts WHERE outbox = ? ORDER BY idx")?;
    for (row, _) in rows.iter_mut().filter(|(_, in_parts)| *in_parts) {
        join_parts(&mut parts, &row.id, &mut row.envelope)?;
    }
    Ok(rows.into_iter().map(|(row, _)| row).collect())
}

/// Chunks that hold a pending message's body ([`InboxRow::body_in_chunks`]); the others wait
/// for the rest of their message.
const HOLDS_PENDING_BODY: &str = "EXISTS (SELECT 1 FROM inbox WHERE inbox.computation = chunks.computation \
     AND inbox.sender = chunks.sender AND inbox.seq = chunks.seq AND inbox.body_in_chunks = 1)";

/// Bytes of the chunks a sender has sent that wait for the rest of their message.
pub fn pending_chunk_bytes(conn: &Connection, sender: &str) -> Result<i64, Error> {
    let sql =
        format!("SELECT COALESCE(SUM(length(data)), 0) FROM chunks WHERE sender = ? AND NOT {HOLDS_PENDING_BODY}");
    Ok(conn.prepare_cached(&sql)?.query_row([sender], |row| row.get(0))?)
}

/// Bytes of all chunks waiting for the rest of their message.
pub fn chunk_bytes(conn: &Connection) -> Result<i64, Error> {
    let sql = format!("SELECT COALESCE(SUM(length(data)), 0) FROM chunks WHERE NOT {HOLDS_PENDING_BODY}");
    Ok(conn.prepare_cached(&sql)?.query_row([], |row| row.get(0))?)
}

/// Whether computation `id` has ended here (final, a tombstone, or pruned): chunks for it are
/// of no use, and kept they would wait for the orphan sweep.
pub fn has_ended(conn: &Connection, id: &str) -> Result<bool, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM computations WHERE id = ?1 AND finished_at IS NOT NULL) \
             OR EXISTS (SELECT 1 FROM retired WHERE id = ?1)",
        )?
        .query_row([id], |row| row.get(0))?)
}

/// Stores one chunk; returns all chunks of its message when this one completed it. The chunks
/// stay: the caller keeps them as the message's body ([`InboxRow::body_in_chunks`]) or discards
/// them ([`discard_chunks`]).
pub fn add_chunk(conn: &Connection, chunk: &ChunkRow) -> Result<Option<Vec<ChunkRow>>, Error> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO chunks (computation, sender, seq, idx, total, data, received_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            chunk.computation,
            chunk.sender,
            chunk.seq,
            chunk.idx,
            chunk.total,
            chunk.data,
            chunk.received_at
        ])?;
    if inserted == 0 {
        // A redelivered chunk: its message was completed by another, or is still incomplete.
        return Ok(None);
    }
    let key = params![chunk.computation, chunk.sender, chunk.seq];
    // Counted first: reading every part's data after every part would cost the square of a
    // large message (a 43 MB message in 1 MB chunks read 0.9 GB).
    let stored: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM chunks WHERE computation = ? AND sender = ? AND seq = ?")?
        .query_row(key, |row| row.get(0))?;
    if stored != chunk.total {
        return Ok(None);
    }
    let parts: Vec<ChunkRow> = conn
        .prepare_cached("SELECT * FROM chunks WHERE computation = ? AND sender = ? AND seq = ? ORDER BY idx")?
        .query_map(key, ChunkRow::read)?
        .collect::<Result<_, _>>()?;
    if parts.len() as i64 != chunk.total
        || parts
            .iter()
            .enumerate()
            .any(|(i, p)| p.idx != i as i64 || p.total != chunk.total)
    {
        return Ok(None);
    }
    Ok(Some(parts))
}

/// Stores receipt signatures; a party's first signature of a computation stands. Returns the
/// keys `(computation, party)` of the rows stored.
pub fn insert_receipts(conn: &Connection, rows: &[ReceiptRow]) -> Result<Vec<(String, String)>, Error> {
    insert_values(
        conn,
        "INSERT INTO receipts (computation, party, definition_digest, outcome, outcome_digest, key_id, signature, path, received_at, unsolicited)",
        "ON CONFLICT DO NOTHING RETURNING computation, party",
        rows,
        |row| {
            [
                &row.computation,
                &row.party,
                &row.definition_digest,
                &row.outcome,
                &row.outcome_digest,
                &row.key_id,
                &row.signature,
                &row.path,
                &row.received_at,
                &row.unsolicited,
            ]
        },
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
}

/// Records charges of the privacy budget; one already recorded for the same computation and
/// client stays as it is (a charge is made once).
/// Appends audit entries: a batch's few in one statement (a lone sum's batches bring one to
/// three), not one statement each.
pub fn insert_audit(conn: &Connection, rows: &[AuditRow]) -> Result<(), Error> {
    insert_values(
        conn,
        "INSERT INTO audit (seq, time, client, action, computation, detail, prev_hash, hash)",
        "",
        rows,
        |row| {
            [
                &row.seq,
                &row.time,
                &row.client,
                &row.action,
                &row.computation,
                &row.detail,
                &row.prev_hash,
                &row.hash,
            ]
        },
        |_| Ok(()),
    )?;
    Ok(())
}

pub fn insert_charges(conn: &Connection, rows: &[ChargeRow]) -> Result<(), Error> {
    insert_values(
        conn,
        "INSERT INTO budget_charges (computation, client, epsilon, delta, rho, charged_at)",
        "ON CONFLICT DO NOTHING",
        rows,
        |row| {
            [
                &row.computation,
                &row.client,
                &row.epsilon,
                &row.delta,
                &row.rho,
                &row.charged_at,
            ]
        },
        |_| Ok(()),
    )?;
    Ok(())
}

/// What each client has been charged since `since` (ms), as the runtime checks a new charge:
/// inside its write transaction, so that no other charge comes in between.
pub fn spent_since(conn: &Connection, since: i64) -> Result<Vec<SpentRow>, Error> {
    let mut statement = conn.prepare_cached(super::SPENT_SINCE)?;
    let rows = statement.query_map([since], |row| {
        Ok(SpentRow {
            client: row.get(0)?,
            epsilon: row.get(1)?,
            delta: row.get(2)?,
            rho: row.get(3)?,
            computations: row.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Most computations [`prune`] takes in one transaction, so that a backlog does not hold the
/// write lock for long (the runtime's sweep and `fsc gc` both prune in such steps).
pub const PRUNE_BATCH: i64 = 5000;

/// Prunes at most `limit` computations that finished before `cutoff` (ms), oldest first, with
/// whatever messages of theirs remain; their ids are kept as retired, their pages given back to
/// the file system. Returns how many.
pub fn prune(conn: &Connection, cutoff: i64, limit: i64) -> Result<u64, Error> {
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT id FROM computations WHERE finished_at IS NOT NULL AND finished_at < ? ORDER BY finished_at LIMIT ?",
        )?
        .query_map([cutoff, limit], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    execute_in(
        conn,
        "INSERT OR IGNORE INTO retired (id, finished_at) SELECT id, finished_at FROM computations WHERE id IN (",
        &ids,
    )?;
    execute_in(conn, "DELETE FROM computations WHERE id IN (", &ids)?;
    execute_in(conn, "DELETE FROM receipts WHERE computation IN (", &ids)?;
    delete_proposals(conn, &ids)?;
    delete_inbox(conn, &ids)?;
    if !ids.is_empty() {
        // The pages the rows held go back to the file system (the store is in incremental
        // auto-vacuum mode, see `open`), else the file would keep its largest size for good. The
        // pragma frees one page per row it returns, so it is read to the end.
        let mut vacuum = conn.prepare_cached("PRAGMA incremental_vacuum")?;
        let mut freed = vacuum.query([])?;
        while freed.next()?.is_some() {}
    }
    Ok(ids.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_come_in_few_shapes() {
        let rows: Vec<u32> = (0..1000).collect();
        let sizes: Vec<usize> = statement_chunks(&rows).map(<[u32]>::len).collect();
        assert_eq!(sizes, [256, 256, 256, 128, 64, 32, 8]);
        assert_eq!(sizes.iter().sum::<usize>(), 1000);
        assert_eq!(statement_chunks::<u32>(&[]).count(), 0);
    }

    #[test]
    fn lists_and_values_have_one_placeholder_per_value() {
        assert_eq!(
            in_list("SELECT id FROM t WHERE id IN (", 3, " ORDER BY id"),
            "SELECT id FROM t WHERE id IN (?, ?, ?) ORDER BY id"
        );
        assert_eq!(values(2, 3), "VALUES (?, ?, ?), (?, ?, ?)");
    }
}
