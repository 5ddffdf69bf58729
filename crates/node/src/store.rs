//! The node's SQLite store: computations, inbox, chunks and outbox (schema in `migrations/`).
//!
//! One connection writes (the runtime's, inside `BEGIN IMMEDIATE` transactions that each cover a
//! whole batch of work); a small read-only pool serves the API. Writes are multi-row statements
//! so that a batch of thousands of messages costs a handful of statements. Queries are checked at
//! run time (`query_as` + `FromRow`), so building needs no database. This module knows rows, not
//! protocols: it never interprets engine state or message bodies.

use crate::error::Error;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, FromRow, QueryBuilder, Sqlite, SqliteConnection, SqlitePool, Transaction};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// Most rows per multi-row statement (at most 15 columns: far below SQLite's 32766 variables).
const ROWS_PER_STATEMENT: usize = 256;

/// Splits `items` into slices of ROWS_PER_STATEMENT, then powers of two: so a multi-row statement
/// comes in at most nine shapes, and the prepared-statement cache stays small and effective.
/// (With arbitrary row counts every batch prepared a new large statement, and the cache of them
/// held tens of megabytes.)
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

/// Computation status, as stored and as shown by the API.
pub const PENDING: &str = "pending";
pub const RUNNING: &str = "running";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";

pub fn is_final(status: &str) -> bool {
    status == SUCCEEDED || status == FAILED
}

/// A computation row, complete.
#[derive(Debug, Clone, FromRow)]
pub struct ComputationRow {
    pub id: String,
    pub microprotocol: Option<String>,
    pub parties: Option<String>,
    pub parameters: Option<String>,
    pub digest: Option<Vec<u8>>,
    pub status: String,
    pub machine: Option<String>,
    pub next_seq: i64,
    pub output: Option<String>,
    pub error: Option<String>,
    pub deadline_at: i64,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// The federatedsecure API's network uuid, for computations started by `compute`.
    pub network: Option<String>,
    /// The API client that submitted it; `None` for a tombstone no client has claimed.
    pub client: Option<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct InboxRow {
    pub computation: String,
    pub sender: String,
    pub seq: i64,
    pub kind: String,
    /// `None` once consumed. Empty if `body_in_chunks`.
    pub body: Option<Vec<u8>>,
    pub received_at: i64,
    /// The message is pending and its body is still in its chunks, sealed (see migration 0008).
    pub body_in_chunks: bool,
}

#[derive(Debug, Clone, FromRow)]
pub struct OutboxRow {
    /// Position in the outbox queue; assigned by [`Writes::insert_outbox`].
    pub id: i64,
    pub computation: String,
    pub recipient: String,
    pub seq: i64,
    pub envelope: Vec<u8>,
    pub created_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct ChunkRow {
    pub computation: String,
    pub sender: String,
    pub seq: i64,
    pub idx: i64,
    pub total: i64,
    pub data: Vec<u8>,
    pub received_at: i64,
}

/// Identifies one message of one sender: `(computation, party, seq)`.
pub type MessageKey = (String, String, i64);

/// Opens (creating if needed) and migrates the store; returns the read pool and the one writer.
/// The writer does not checkpoint the WAL itself (that would stall it, fsync included): a
/// background task does, see [`checkpoint_regularly`].
pub async fn open(path: &Path) -> Result<(SqlitePool, Writer), Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    owner_only(path)?;
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .statement_cache_capacity(64);
    // 8 MiB of page cache: a batch of thousands of rows must not spill dirty pages mid-transaction.
    // Statement journals in memory: a multi-row insert journals the pages it changes, in case it
    // fails halfway, and in a temporary file those writes were a tenth of a busy node's CPU.
    let writer_options = options
        .clone()
        .pragma("cache_size", "-8192")
        .pragma("temp_store", "memory")
        .pragma("wal_autocheckpoint", "0");
    let mut conn = SqliteConnection::connect_with(&writer_options).await?;
    // run_direct: `run` takes an `Acquire` whose higher-ranked bound makes spawned futures non-Send.
    sqlx::migrate!("../../migrations").run_direct(&mut conn).await?;
    let read = SqlitePoolOptions::new()
        .max_connections(4)
        .min_connections(1)
        .connect_with(options.clone().read_only(true))
        .await?;
    let checkpointer = SqliteConnection::connect_with(&options).await?;
    tokio::spawn(checkpoint_regularly(checkpointer));
    Ok((read, Writer { conn }))
}

/// The store holds what peers sent and results: readable by the node's user only, like its keys.
/// SQLite creates the WAL and shared-memory files with the database file's mode, so creating
/// the database 0600 (and tightening files an older version left wider) covers all three.
fn owner_only(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    for file in [path.to_path_buf(), suffixed(path, "-wal"), suffixed(path, "-shm")] {
        match std::fs::metadata(&file) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                tracing::warn!(file = %file.display(), "store file was readable by others; now 0600");
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn suffixed(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// Copies the WAL back into the database every second without blocking the writer (PASSIVE),
/// and resets it when it has grown large and nobody reads from it (TRUNCATE).
async fn checkpoint_regularly(mut conn: SqliteConnection) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        // (busy, WAL frames, frames checkpointed)
        let passive = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut conn)
            .await;
        match passive {
            Ok((_, frames, done)) if frames > 50_000 && frames == done => {
                let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await;
            }
            Ok(_) => {}
            Err(sqlx::Error::PoolClosed) => return,
            Err(error) => tracing::warn!(%error, "WAL checkpoint failed; retrying"),
        }
    }
}

/// The one writing connection.
pub struct Writer {
    conn: SqliteConnection,
}

impl Writer {
    /// Starts a write transaction that holds the write lock from the start.
    pub async fn begin(&mut self) -> Result<Transaction<'_, Sqlite>, Error> {
        Ok(self.conn.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub fn conn(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

pub async fn get_computation_pool(pool: &SqlitePool, id: &str) -> Result<Option<ComputationRow>, Error> {
    Ok(sqlx::query_as("SELECT * FROM computations WHERE id = ?")
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

/// Those of `ids` that exist.
pub async fn get_computations(conn: &mut SqliteConnection, ids: &[String]) -> Result<Vec<ComputationRow>, Error> {
    let mut found = Vec::new();
    for chunk in statement_chunks(ids) {
        let mut query = in_list("SELECT * FROM computations WHERE id IN (", chunk);
        found.extend(query.build_query_as::<ComputationRow>().fetch_all(&mut *conn).await?);
    }
    Ok(found)
}

/// `<prefix> ?, ?, ... )` with `ids` bound.
fn in_list<'a>(prefix: &str, ids: &'a [String]) -> QueryBuilder<'a, Sqlite> {
    let mut query = QueryBuilder::<Sqlite>::new(prefix);
    push_list(&mut query, ids);
    query
}

/// Appends `?, ?, ... )` to `query`, with `ids` bound.
fn push_list<'a, T>(query: &mut QueryBuilder<'a, Sqlite>, ids: &'a [T])
where
    &'a T: sqlx::Encode<'a, Sqlite> + sqlx::Type<Sqlite> + Send,
{
    let mut list = query.separated(", ");
    for id in ids {
        list.push_bind(id);
    }
    query.push(")");
}

/// Computations that are not final and not tombstones: what the runtime resumes after a restart.
pub async fn active_computations(conn: &mut SqliteConnection) -> Result<Vec<ComputationRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT * FROM computations WHERE status IN ('pending', 'running') AND microprotocol IS NOT NULL",
    )
    .fetch_all(conn)
    .await?)
}

/// Inserts inbox rows; returns the keys of those that were new (the others are duplicates).
pub async fn insert_inbox(conn: &mut SqliteConnection, rows: &[InboxRow]) -> Result<Vec<MessageKey>, Error> {
    let mut inserted = Vec::new();
    for chunk in statement_chunks(rows) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "INSERT INTO inbox (computation, sender, seq, kind, body, received_at, body_in_chunks) ",
        );
        query.push_values(chunk, |mut b, row| {
            b.push_bind(&row.computation)
                .push_bind(&row.sender)
                .push_bind(row.seq)
                .push_bind(&row.kind)
                .push_bind(&row.body)
                .push_bind(row.received_at)
                .push_bind(row.body_in_chunks);
        });
        query.push(" ON CONFLICT DO NOTHING RETURNING computation, sender, seq");
        inserted.extend(
            query
                .build_query_as::<(String, String, i64)>()
                .fetch_all(&mut *conn)
                .await?,
        );
    }
    Ok(inserted)
}

/// Messages that arrived before these computations were submitted here, in arrival order.
pub async fn pending_inbox(conn: &mut SqliteConnection, computations: &[String]) -> Result<Vec<InboxRow>, Error> {
    let mut found = Vec::new();
    for chunk in statement_chunks(computations) {
        let mut query = in_list("SELECT * FROM inbox WHERE body IS NOT NULL AND computation IN (", chunk);
        query.push(" ORDER BY received_at, computation, sender, seq");
        found.extend(query.build_query_as::<InboxRow>().fetch_all(&mut *conn).await?);
    }
    Ok(found)
}

/// Of these ids of computations not active here: those retired (pruned after the retention), and
/// those with messages waiting for their submission here. One query for both: every submission
/// asks.
pub async fn retired_and_waiting(
    conn: &mut SqliteConnection,
    ids: &[String],
) -> Result<(Vec<String>, Vec<String>), Error> {
    let (mut retired, mut waiting) = (Vec::new(), Vec::new());
    for chunk in statement_chunks(ids) {
        let mut query = in_list("SELECT 1, id FROM retired WHERE id IN (", chunk);
        query.push(" UNION ALL SELECT DISTINCT 0, computation FROM inbox WHERE body IS NOT NULL AND computation IN (");
        push_list(&mut query, chunk);
        for (is_retired, id) in query.build_query_as::<(bool, String)>().fetch_all(&mut *conn).await? {
            if is_retired { &mut retired } else { &mut waiting }.push(id);
        }
    }
    Ok((retired, waiting))
}

/// The ids that `<select> ?, ?, ... )` finds among `ids`.
async fn select_ids(conn: &mut SqliteConnection, select: &str, ids: &[String]) -> Result<Vec<String>, Error> {
    let mut found = Vec::new();
    for chunk in statement_chunks(ids) {
        let mut query = in_list(select, chunk);
        found.extend(query.build_query_scalar::<String>().fetch_all(&mut *conn).await?);
    }
    Ok(found)
}

/// Marks single inbox rows as consumed (the messages a long engine step has applied).
pub async fn consume_messages(conn: &mut SqliteConnection, keys: &[MessageKey]) -> Result<(), Error> {
    for_each_message(
        conn,
        keys,
        &[
            "UPDATE inbox SET body = NULL, body_in_chunks = 0 WHERE computation = ?1 AND sender = ?2 AND seq = ?3",
            "DELETE FROM chunks WHERE computation = ?1 AND sender = ?2 AND seq = ?3",
        ],
    )
    .await
}

/// Deletes the chunks of messages that were reassembled but whose bodies are not kept (consumed
/// at once, duplicates, rejected), unless they hold the body of a pending inbox row.
pub async fn discard_chunks(conn: &mut SqliteConnection, keys: &[MessageKey]) -> Result<(), Error> {
    for_each_message(
        conn,
        keys,
        &[
            "DELETE FROM chunks WHERE computation = ?1 AND sender = ?2 AND seq = ?3 AND NOT EXISTS \
           (SELECT 1 FROM inbox WHERE computation = ?1 AND sender = ?2 AND seq = ?3 AND body_in_chunks = 1)",
        ],
    )
    .await
}

/// Runs `statements` for each message key, bound as `?1` (computation), `?2` (sender), `?3` (seq).
async fn for_each_message(conn: &mut SqliteConnection, keys: &[MessageKey], statements: &[&str]) -> Result<(), Error> {
    for (computation, sender, seq) in keys {
        for statement in statements {
            sqlx::query(statement)
                .bind(computation)
                .bind(sender)
                .bind(seq)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// The sealed message that a pending inbox row keeps in its chunks, reassembled.
pub async fn message_in_chunks(
    conn: &mut SqliteConnection,
    (computation, sender, seq): &MessageKey,
) -> Result<Vec<u8>, Error> {
    let parts: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT data FROM chunks WHERE computation = ? AND sender = ? AND seq = ? ORDER BY idx")
            .bind(computation)
            .bind(sender)
            .bind(seq)
            .fetch_all(&mut *conn)
            .await?;
    Ok(parts.concat())
}

/// The parties that have sent anything for a computation.
pub async fn senders(conn: &mut SqliteConnection, computation: &str) -> Result<Vec<String>, Error> {
    Ok(
        sqlx::query_scalar("SELECT DISTINCT sender FROM inbox WHERE computation = ?")
            .bind(computation)
            .fetch_all(conn)
            .await?,
    )
}

/// Drops messages for computations that were never submitted here and are older than `cutoff`.
pub async fn expire_orphans(conn: &mut SqliteConnection, cutoff: i64) -> Result<u64, Error> {
    let inbox = sqlx::query(
        "DELETE FROM inbox WHERE body IS NOT NULL AND received_at < ? \
         AND computation NOT IN (SELECT id FROM computations)",
    )
    .bind(cutoff)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let chunks = sqlx::query("DELETE FROM chunks WHERE received_at < ?")
        .bind(cutoff)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(inbox + chunks)
}

/// Writes sent to SQLite together, as one multi-statement query: one round trip to the store's
/// thread for all of them instead of one per statement. Under load each round trip waits for two
/// threads to be scheduled, which was a large part of a small batch's time. Statements run in
/// the order they were added.
pub struct Writes<'a> {
    query: QueryBuilder<'a, Sqlite>,
    /// Rows and ids bound so far: a query of a few is kept prepared (a lone computation's
    /// batches come in a few shapes, and preparing them again cost more than the round trips
    /// saved); a larger one is not (its shapes vary, and the cache of them held tens of MB).
    rows: usize,
}

/// The most rows a [`Writes`] query may bind to be kept prepared.
const WRITES_KEPT_PREPARED_UP_TO_ROWS: usize = 16;

impl Default for Writes<'_> {
    fn default() -> Self {
        Writes {
            query: QueryBuilder::new(""),
            rows: 0,
        }
    }
}

impl<'a> Writes<'a> {
    /// Starts the next statement with `sql`.
    fn statement(&mut self, sql: &str) -> &mut QueryBuilder<'a, Sqlite> {
        if !self.query.sql().is_empty() {
            self.query.push(";\n");
        }
        self.query.push(sql)
    }

    /// `<sql> ?, ?, ... )` with `ids` bound, per slice of [`statement_chunks`].
    fn in_list<T>(&mut self, sql: &str, ids: &'a [T])
    where
        &'a T: sqlx::Encode<'a, Sqlite> + sqlx::Type<Sqlite> + Send,
    {
        self.rows += ids.len();
        for chunk in statement_chunks(ids) {
            push_list(self.statement(sql), chunk);
        }
    }

    /// Inserts or replaces whole computation rows. An active row without a `machine` keeps the
    /// stored state (a long step's state is large and unchanged until its next step); a final row
    /// drops it.
    pub fn upsert_computations(&mut self, rows: &'a [&'a ComputationRow]) {
        self.rows += rows.len();
        for chunk in statement_chunks(rows) {
            let query = self.statement(
                "INSERT INTO computations (id, microprotocol, parties, parameters, digest, status, machine, \
                 next_seq, output, error, deadline_at, created_at, finished_at, network, client) ",
            );
            query.push_values(chunk, |mut b, row| {
                b.push_bind(&row.id)
                    .push_bind(&row.microprotocol)
                    .push_bind(&row.parties)
                    .push_bind(&row.parameters)
                    .push_bind(&row.digest)
                    .push_bind(&row.status)
                    .push_bind(&row.machine)
                    .push_bind(row.next_seq)
                    .push_bind(&row.output)
                    .push_bind(&row.error)
                    .push_bind(row.deadline_at)
                    .push_bind(row.created_at)
                    .push_bind(row.finished_at)
                    .push_bind(&row.network)
                    .push_bind(&row.client);
            });
            query.push(
                " ON CONFLICT (id) DO UPDATE SET microprotocol = excluded.microprotocol, parties = excluded.parties, \
                 parameters = excluded.parameters, digest = excluded.digest, \
                 status = excluded.status, \
                 machine = CASE WHEN excluded.status IN ('pending', 'running') \
                     THEN COALESCE(excluded.machine, computations.machine) END, next_seq = excluded.next_seq, \
                 output = excluded.output, error = excluded.error, deadline_at = excluded.deadline_at, \
                 finished_at = excluded.finished_at, network = excluded.network, client = excluded.client",
            );
        }
    }

    /// Marks the pending messages of these computations as consumed (their bodies are not needed).
    pub fn consume_inbox(&mut self, computations: &'a [String]) {
        // Only the chunks that hold a pending message's body: others may be part of a message
        // still arriving.
        self.in_list(
            "DELETE FROM chunks WHERE EXISTS (SELECT 1 FROM inbox WHERE inbox.computation = chunks.computation \
             AND inbox.sender = chunks.sender AND inbox.seq = chunks.seq AND inbox.body_in_chunks = 1) \
             AND computation IN (",
            computations,
        );
        self.in_list(
            "UPDATE inbox SET body = NULL, body_in_chunks = 0 WHERE computation IN (",
            computations,
        );
    }

    /// Forgets the inbox (and any chunks) of finished computations.
    pub fn delete_inbox(&mut self, computations: &'a [String]) {
        self.in_list("DELETE FROM inbox WHERE computation IN (", computations);
        self.in_list("DELETE FROM chunks WHERE computation IN (", computations);
    }

    /// Removes published rows.
    pub fn delete_outbox(&mut self, ids: &'a [i64]) {
        self.in_list("DELETE FROM outbox WHERE id IN (", ids);
    }

    /// Appends rows to the outbox; [`Writes::run`] returns their ids for [`set_outbox_ids`].
    pub fn insert_outbox(&mut self, rows: &'a [OutboxRow]) {
        self.rows += rows.len();
        for chunk in statement_chunks(rows) {
            let query = self.statement("INSERT INTO outbox (computation, recipient, seq, envelope, created_at) ");
            query.push_values(chunk, |mut b, row| {
                b.push_bind(&row.computation)
                    .push_bind(&row.recipient)
                    .push_bind(row.seq)
                    .push_bind(&row.envelope)
                    .push_bind(row.created_at);
            });
            query.push(" RETURNING id, computation, recipient, seq");
        }
    }

    /// Runs the statements; returns what the outbox inserts returned (no other statement returns
    /// rows).
    pub async fn run(mut self, conn: &mut SqliteConnection) -> Result<Vec<OutboxKey>, Error> {
        if self.query.sql().is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .query
            .build_query_as::<OutboxKey>()
            .persistent(self.rows <= WRITES_KEPT_PREPARED_UP_TO_ROWS)
            .fetch_all(conn)
            .await?)
    }
}

/// An outbox row's id, and the message it holds: `(id, computation, recipient, seq)`.
pub type OutboxKey = (i64, String, String, i64);

/// Sets the ids of outbox rows from what [`Writes::run`] returned.
pub fn set_outbox_ids(rows: &mut [OutboxRow], returned: Vec<OutboxKey>) {
    let ids: HashMap<(String, String, i64), i64> = returned
        .into_iter()
        .map(|(id, computation, recipient, seq)| ((computation, recipient, seq), id))
        .collect();
    for row in rows {
        row.id = ids[&(row.computation.clone(), row.recipient.clone(), row.seq)];
    }
}

pub async fn all_outbox(conn: &mut SqliteConnection) -> Result<Vec<OutboxRow>, Error> {
    Ok(sqlx::query_as("SELECT * FROM outbox ORDER BY created_at")
        .fetch_all(conn)
        .await?)
}

pub async fn outbox_len(pool: &SqlitePool) -> Result<i64, Error> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(pool)
        .await?)
}

/// Chunks that wait for the rest of their message, not those holding a pending message's body.
const INCOMPLETE_CHUNKS: &str = "NOT EXISTS (SELECT 1 FROM inbox WHERE inbox.computation = chunks.computation \
     AND inbox.sender = chunks.sender AND inbox.seq = chunks.seq AND inbox.body_in_chunks = 1)";

/// Bytes of the chunks a sender has sent that wait for the rest of their message.
pub async fn pending_chunk_bytes(conn: &mut SqliteConnection, sender: &str) -> Result<i64, Error> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT COALESCE(SUM(length(data)), 0) FROM chunks WHERE sender = ? AND {INCOMPLETE_CHUNKS}"
    ))
    .bind(sender)
    .fetch_one(conn)
    .await?)
}

/// Bytes of all chunks waiting for the rest of their message.
pub async fn chunk_bytes(conn: &mut SqliteConnection) -> Result<i64, Error> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT COALESCE(SUM(length(data)), 0) FROM chunks WHERE {INCOMPLETE_CHUNKS}"
    ))
    .fetch_one(conn)
    .await?)
}

/// Stores one chunk; returns all chunks of its message when this one completed it. The chunks
/// stay: the caller keeps them as the message's body ([`InboxRow::body_in_chunks`]) or discards
/// them ([`discard_chunks`]).
pub async fn add_chunk(conn: &mut SqliteConnection, chunk: &ChunkRow) -> Result<Option<Vec<ChunkRow>>, Error> {
    let inserted = sqlx::query(
        "INSERT INTO chunks (computation, sender, seq, idx, total, data, received_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&chunk.computation)
    .bind(&chunk.sender)
    .bind(chunk.seq)
    .bind(chunk.idx)
    .bind(chunk.total)
    .bind(&chunk.data)
    .bind(chunk.received_at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        // A redelivered chunk: its message was completed by another, or is still incomplete.
        return Ok(None);
    }
    // Counted first: reading every part's data after every part would cost the square of a
    // large message (a 43 MB message in 1 MB chunks read 0.9 GB).
    let stored: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM chunks WHERE computation = ? AND sender = ? AND seq = ?")
            .bind(&chunk.computation)
            .bind(&chunk.sender)
            .bind(chunk.seq)
            .fetch_one(&mut *conn)
            .await?;
    if stored != chunk.total {
        return Ok(None);
    }
    let parts: Vec<ChunkRow> =
        sqlx::query_as("SELECT * FROM chunks WHERE computation = ? AND sender = ? AND seq = ? ORDER BY idx")
            .bind(&chunk.computation)
            .bind(&chunk.sender)
            .bind(chunk.seq)
            .fetch_all(&mut *conn)
            .await?;
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

/// A page of computations, newest first, after the cursor `(created_at, id)` if given; only those
/// of `client` if given.
pub async fn list_computations(
    pool: &SqlitePool,
    client: Option<&str>,
    status: Option<&str>,
    limit: i64,
    after: Option<(i64, String)>,
) -> Result<Vec<ComputationRow>, Error> {
    let mut query = QueryBuilder::<Sqlite>::new("SELECT * FROM computations WHERE 1 = 1");
    if let Some(client) = client {
        query.push(" AND client = ").push_bind(client.to_string());
    }
    if let Some(status) = status {
        query.push(" AND status = ").push_bind(status.to_string());
    }
    if let Some((created_at, id)) = after {
        query
            .push(" AND (created_at, id) < (")
            .push_bind(created_at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    query.push(" ORDER BY created_at DESC, id DESC LIMIT ").push_bind(limit);
    Ok(query.build_query_as().fetch_all(pool).await?)
}

/// The computations of a federatedsecure network uuid that have not ended here.
pub async fn unfinished_for_network(pool: &SqlitePool, network: &str) -> Result<Vec<ComputationRow>, Error> {
    Ok(
        sqlx::query_as("SELECT * FROM computations WHERE network = ? AND status IN ('pending', 'running')")
            .bind(network)
            .fetch_all(pool)
            .await?,
    )
}

/// Which of these ids belonged to computations pruned after the retention.
pub async fn retired(conn: &mut SqliteConnection, ids: &[String]) -> Result<Vec<String>, Error> {
    select_ids(conn, "SELECT id FROM retired WHERE id IN (", ids).await
}

/// Most computations [`prune`] takes in one transaction, so that a backlog does not hold the
/// write lock for long (the runtime's sweep and `fsc gc` both prune in such steps).
pub const PRUNE_BATCH: i64 = 5000;

/// Prunes at most `limit` computations that finished before `cutoff` (ms), oldest first, with
/// whatever messages of theirs remain; their ids are kept as retired. Returns how many.
pub async fn prune(conn: &mut SqliteConnection, cutoff: i64, limit: i64) -> Result<u64, Error> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM computations WHERE finished_at IS NOT NULL AND finished_at < ? ORDER BY finished_at LIMIT ?",
    )
    .bind(cutoff)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    for chunk in statement_chunks(&ids) {
        in_list(
            "INSERT INTO retired (id, finished_at) SELECT id, finished_at FROM computations WHERE id IN (",
            chunk,
        )
        .push(" ON CONFLICT DO NOTHING")
        .build()
        .execute(&mut *conn)
        .await?;
        in_list("DELETE FROM computations WHERE id IN (", chunk)
            .build()
            .execute(&mut *conn)
            .await?;
    }
    let mut writes = Writes::default();
    writes.delete_inbox(&ids);
    writes.run(conn).await?;
    Ok(ids.len() as u64)
}

/// What [`collect_garbage`] did.
pub struct GarbageCollected {
    pub pruned: u64,
    /// Bytes of the database and its WAL before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// `fsc gc`: prunes every computation that finished before `cutoff` (ms) now, in transactions
/// short enough to run beside a live node, then resets the WAL and, with `vacuum`, rewrites the
/// database to its smallest size (which holds the write lock for the whole rewrite: best with
/// the node stopped).
pub async fn collect_garbage(path: &Path, cutoff: i64, vacuum: bool) -> Result<GarbageCollected, Error> {
    let size = || {
        [path.to_path_buf(), suffixed(path, "-wal")]
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum::<u64>()
    };
    let bytes_before = size();
    let (read, mut writer) = open(path).await?;
    let mut pruned = 0;
    loop {
        let mut tx = writer.begin().await?;
        let n = prune(&mut tx, cutoff, PRUNE_BATCH).await?;
        tx.commit().await?;
        pruned += n;
        if n < PRUNE_BATCH as u64 {
            break;
        }
    }
    if vacuum {
        sqlx::query("VACUUM").execute(writer.conn()).await?;
    }
    // A running node's readers and writes can hold the WAL for a moment: try for a few seconds.
    for _ in 0..50 {
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(writer.conn())
            .await?;
        if busy == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    read.close().await;
    Ok(GarbageCollected {
        pruned,
        bytes_before,
        bytes_after: size(),
    })
}

/// The newest computation of a federatedsecure network uuid here.
pub async fn latest_for_network(pool: &SqlitePool, network: &str) -> Result<Option<ComputationRow>, Error> {
    Ok(
        sqlx::query_as("SELECT * FROM computations WHERE network = ? ORDER BY created_at DESC, id DESC LIMIT 1")
            .bind(network)
            .fetch_optional(pool)
            .await?,
    )
}

/// How many computations this node has recorded for a federatedsecure network uuid.
pub async fn network_uses(pool: &SqlitePool, network: &str) -> Result<i64, Error> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM computations WHERE network = ?")
            .bind(network)
            .fetch_one(pool)
            .await?,
    )
}

/// Store and broker-independent health: can we read?
pub async fn ping(pool: &SqlitePool) -> Result<(), Error> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn upsert(conn: &mut SqliteConnection, row: &ComputationRow) {
        let rows = [row];
        let mut writes = Writes::default();
        writes.upsert_computations(&rows);
        writes.run(conn).await.unwrap();
    }

    #[test]
    fn statements_come_in_few_shapes() {
        let rows: Vec<u32> = (0..1000).collect();
        let sizes: Vec<usize> = statement_chunks(&rows).map(<[u32]>::len).collect();
        assert_eq!(sizes, [256, 256, 256, 128, 64, 32, 8]);
        assert_eq!(sizes.iter().sum::<usize>(), 1000);
        assert_eq!(statement_chunks::<u32>(&[]).count(), 0);
    }

    async fn stored_machine(pool: &SqlitePool, id: &str) -> Option<String> {
        sqlx::query_scalar("SELECT machine FROM computations WHERE id = ?")
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn an_active_row_without_a_machine_keeps_the_stored_one_and_a_final_row_drops_it() {
        let dir = tempfile::tempdir().unwrap();
        let (pool, mut writer) = open(&dir.path().join("store.db")).await.unwrap();
        let mut row = ComputationRow {
            id: "c1".into(),
            microprotocol: Some("SetIntersectionSize".into()),
            parties: None,
            parameters: None,
            digest: None,
            status: PENDING.into(),
            machine: Some("the state after the last step".into()),
            next_seq: 0,
            output: None,
            error: None,
            deadline_at: 0,
            created_at: 0,
            finished_at: None,
            network: None,
            client: None,
        };
        upsert(writer.conn(), &row).await;
        row.status = RUNNING.into();
        row.machine = None;
        upsert(writer.conn(), &row).await;
        assert_eq!(
            stored_machine(&pool, "c1").await.as_deref(),
            Some("the state after the last step")
        );
        row.machine = Some("the next state".into());
        upsert(writer.conn(), &row).await;
        assert_eq!(stored_machine(&pool, "c1").await.as_deref(), Some("the next state"));
        row.status = FAILED.into();
        row.machine = None;
        upsert(writer.conn(), &row).await;
        assert_eq!(stored_machine(&pool, "c1").await, None);
    }

    /// Many statements in one query, each with its own arguments, in order: the outbox rows a
    /// batch inserts get their ids, and a later batch's deletions (beside other writes) take
    /// exactly the rows they name; the same holds for a query too large to keep prepared.
    #[tokio::test]
    async fn writes_of_one_batch_run_in_order_with_their_own_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let (_pool, mut writer) = open(&dir.path().join("store.db")).await.unwrap();
        for messages in [3, 3 * WRITES_KEPT_PREPARED_UP_TO_ROWS] {
            let mut outbox: Vec<OutboxRow> = (0..messages as i64)
                .map(|seq| OutboxRow {
                    id: 0,
                    computation: format!("c{messages}"),
                    recipient: ["bob", "carol"][seq as usize % 2].into(),
                    seq,
                    envelope: vec![seq as u8; 10],
                    created_at: seq,
                })
                .collect();
            let mut writes = Writes::default();
            writes.insert_outbox(&outbox);
            let returned = writes.run(writer.conn()).await.unwrap();
            set_outbox_ids(&mut outbox, returned);
            let stored = all_outbox(writer.conn()).await.unwrap();
            assert_eq!(
                stored.iter().map(|r| (r.id, r.seq)).collect::<Vec<_>>(),
                outbox.iter().map(|r| (r.id, r.seq)).collect::<Vec<_>>()
            );

            let published: Vec<i64> = outbox.iter().skip(1).map(|r| r.id).collect();
            let finished = vec![format!("c{messages}")];
            let mut writes = Writes::default();
            writes.delete_outbox(&published);
            writes.delete_inbox(&finished);
            writes.consume_inbox(&finished);
            assert!(writes.run(writer.conn()).await.unwrap().is_empty());
            let left = all_outbox(writer.conn()).await.unwrap();
            assert_eq!(left.iter().map(|r| r.id).collect::<Vec<_>>(), [outbox[0].id]);
            let mut writes = Writes::default();
            writes.delete_outbox(std::slice::from_ref(&outbox[0].id));
            writes.run(writer.conn()).await.unwrap();
        }
    }

    #[tokio::test]
    async fn tables_of_message_bodies_are_rowid_tables() {
        // WITHOUT ROWID tables copy whole rows into interior pages (see migration 0007).
        let dir = tempfile::tempdir().unwrap();
        let (pool, _writer) = open(&dir.path().join("store.db")).await.unwrap();
        for table in ["inbox", "chunks", "outbox", "computations"] {
            let sql: String = sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?")
                .bind(table)
                .fetch_one(&pool)
                .await
                .unwrap();
            assert!(!sql.to_uppercase().contains("WITHOUT ROWID"), "{table}: {sql}");
        }
    }
}
