//! The node's SQLite store: computations, inbox, chunks and outbox (schema in `migrations/`).
//!
//! One connection writes: the runtime's, synchronous, inside `BEGIN IMMEDIATE` transactions that
//! each cover a whole batch of work ([`write`]). A small read-only sqlx pool serves the API, and
//! sqlx runs the migrations. Queries are checked at run time, so building needs no database. This
//! module knows rows, not protocols: it never interprets engine state or message bodies.

use crate::error::Error;
use sqlx::sqlite::{SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, FromRow, QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use std::path::Path;
use std::time::{Duration, Instant};

mod rows;
mod write;

pub use rows::{
    AuditRow, ChargeRow, ChunkRow, ComputationRow, FAILED, InboxRow, MessageKey, OutboxRow, PENDING, ProposalRow,
    RUNNING, ReceiptRow, SUCCEEDED, SpentRow, is_final,
};
pub use write::{
    PRUNE_BATCH, Writer, active_computations, add_chunk, all_outbox, bulk, chunk_bytes, consume_inbox,
    consume_messages, delete_inbox, delete_outbox, delete_proposals, discard_chunks, expire_orphans, get_computations,
    has_ended, insert_audit, insert_bulk, insert_charges, insert_inbox, insert_outbox, insert_proposals,
    insert_receipts, max_value_bytes, message_in_chunks, pending_chunk_bytes, pending_inbox, proposal, prune, retired,
    retired_and_waiting, senders, spent_since, stored_computations, unsolicited_bytes, upsert_computations,
};

/// The WAL's size past which it is emptied even while the node is busy (see
/// [`checkpoint_regularly`]), and to which the writer cuts it back whenever it starts it over.
pub const WAL_LIMIT_BYTES: i64 = 64 << 20;

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
    // Set before the first table exists, so that a new store is created incremental.
    let mut conn = SqliteConnection::connect_with(&options.clone().auto_vacuum(SqliteAutoVacuum::Incremental)).await?;
    make_incremental(&mut conn, path).await?;
    // run_direct: `run` takes an `Acquire` whose higher-ranked bound makes spawned futures non-Send.
    sqlx::migrate!("../../migrations").run_direct(&mut conn).await?;
    conn.close().await?;
    let writer = Writer::open(path)?;
    let read = SqlitePoolOptions::new()
        .max_connections(4)
        .min_connections(1)
        .connect_with(options.clone().read_only(true))
        .await?;
    // A short busy timeout: a TRUNCATE checkpoint that would wait for the runtime's writer or a
    // reader gives up instead, and tries again a second later.
    let checkpointer = SqliteConnection::connect_with(&options.clone().busy_timeout(CHECKPOINT_PATIENCE)).await?;
    tokio::spawn(checkpoint_regularly(checkpointer));
    Ok((read, writer))
}

/// Pruned computations give their pages back to the file system only in a store with incremental
/// auto-vacuum ([`prune`] vacuums after each prune). A new store is created so; one from an older
/// version is converted here, once, by a VACUUM: it rewrites the whole database, which takes about
/// as long as copying the file (seconds for hundreds of MB) and needs free disk for two more copies
/// meanwhile (a temporary one and the WAL); the node starts when it is done.
async fn make_incremental(conn: &mut SqliteConnection, path: &Path) -> Result<(), Error> {
    const INCREMENTAL: i64 = 2;
    let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum").fetch_one(&mut *conn).await?;
    if mode == INCREMENTAL {
        return Ok(());
    }
    let started = Instant::now();
    let bytes_before = store_bytes(path);
    tracing::info!(
        bytes = bytes_before,
        "converting the store to incremental auto-vacuum, once: VACUUM rewrites the whole file"
    );
    sqlx::query("VACUUM").execute(&mut *conn).await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut *conn)
        .await?;
    tracing::info!(
        bytes_before,
        bytes_after = store_bytes(path),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "the store gives pruned pages back from now on"
    );
    Ok(())
}

/// Bytes of the database and its WAL.
fn store_bytes(path: &Path) -> u64 {
    [path.to_path_buf(), suffixed(path, "-wal")]
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
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

/// How long the checkpointer's TRUNCATE waits for a lock before it gives up until the next tick.
const CHECKPOINT_PATIENCE: Duration = Duration::from_millis(50);

/// Copies the WAL back into the database every second without blocking the writer (PASSIVE),
/// and empties the file (TRUNCATE) once it is all copied and nothing was committed for a second
/// (an idle node keeps no WAL), or when it has grown past [`WAL_LIMIT_BYTES`] under a load that
/// never lets the writer start it over. TRUNCATE holds the write lock while it copies what the
/// PASSIVE left and cuts the file, and waits at most [`CHECKPOINT_PATIENCE`] for the writer or a
/// reader (else it tries again a second later). Under a saturating load that pauses the runtime's
/// writes once per [`WAL_LIMIT_BYTES`] written (a few hundred ms on a busy 2-core machine, every
/// 8 to 10 s at full speed); fsc-bench's throughput did not change.
async fn checkpoint_regularly(mut conn: SqliteConnection) {
    let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut conn)
        .await
        .unwrap_or(4096);
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_frames = None;
    loop {
        every.tick().await;
        // (busy, WAL frames, frames checkpointed)
        let passive = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut conn)
            .await;
        match passive {
            Ok((_, frames, done)) => {
                let idle = frames > 0 && frames == done && last_frames == Some(frames);
                if idle || frames * page_size > WAL_LIMIT_BYTES {
                    // Busy (the writer or a reader held on): the next tick tries again.
                    let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await;
                }
                last_frames = Some(frames);
            }
            Err(error) => tracing::warn!(%error, "WAL checkpoint failed; retrying"),
        }
    }
}

/// A computation row's columns as the API reads them: all but the engine's state, which only the
/// runtime reads and which a PSI's whole lists make hundreds of MB (a client polling one running
/// read them all at every poll).
const RECORD: &str = "id, microprotocol, parties, parameters, digest, status, NULL AS machine, next_seq, output, error, \
                      deadline_at, created_at, finished_at, network, client, dataset";

pub async fn get_computation_pool(pool: &SqlitePool, id: &str) -> Result<Option<ComputationRow>, Error> {
    Ok(
        sqlx::query_as(&format!("SELECT {RECORD} FROM computations WHERE id = ?"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// The proposals this node holds (computations a peer started that no client here has
/// submitted, see migration 0015) whose deadline has not passed, soonest deadline first, each with
/// the parties whose messages for it have reached this node; at most `limit`.
pub async fn proposals_pool(pool: &SqlitePool, now: i64, limit: i64) -> Result<Vec<(ProposalRow, Vec<String>)>, Error> {
    let rows: Vec<ProposalRow> = sqlx::query_as(
        "SELECT * FROM proposals WHERE deadline_at > ? AND computation NOT IN (SELECT id FROM computations) \
         ORDER BY deadline_at, computation LIMIT ?",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        let joined = senders_pool(pool, &row.computation).await?;
        found.push((row, joined));
    }
    Ok(found)
}

/// The parties whose messages for a computation have reached this node (and are not yet deleted:
/// a running computation keeps the keys of every message it received).
pub async fn senders_pool(pool: &SqlitePool, id: &str) -> Result<Vec<String>, Error> {
    Ok(
        sqlx::query_scalar("SELECT DISTINCT sender FROM inbox WHERE computation = ? ORDER BY sender")
            .bind(id)
            .fetch_all(pool)
            .await?,
    )
}

/// The receipt signatures stored for a computation.
pub async fn receipts_pool(pool: &SqlitePool, id: &str) -> Result<Vec<ReceiptRow>, Error> {
    Ok(
        sqlx::query_as("SELECT * FROM receipts WHERE computation = ? ORDER BY party")
            .bind(id)
            .fetch_all(pool)
            .await?,
    )
}

pub async fn outbox_len(pool: &SqlitePool) -> Result<i64, Error> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(pool)
        .await?)
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
    let mut query = QueryBuilder::<Sqlite>::new(format!("SELECT {RECORD} FROM computations WHERE 1 = 1"));
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

/// What this node has recorded of a federatedsecure network uuid.
pub struct NetworkRecord {
    /// Its computations that have not ended here.
    pub unfinished: Vec<ComputationRow>,
    /// Its newest computation.
    pub latest: Option<ComputationRow>,
    /// How many computations it has had here.
    pub uses: i64,
}

/// A federatedsecure network's record here, in one query (each is a round trip to a reader
/// thread, and every `compute` asks).
pub async fn network_record(pool: &SqlitePool, network: &str) -> Result<NetworkRecord, Error> {
    #[derive(FromRow)]
    struct Found {
        #[sqlx(flatten)]
        row: ComputationRow,
        uses: i64,
        latest: bool,
    }
    let found: Vec<Found> = sqlx::query_as(&format!(
        "WITH of_network AS (SELECT {RECORD} FROM computations WHERE network = ?1), \
              newest AS (SELECT id FROM of_network ORDER BY created_at DESC, id DESC LIMIT 1) \
         SELECT of_network.*, (SELECT count(*) FROM of_network) AS uses, id IN newest AS latest \
         FROM of_network WHERE status IN ('pending', 'running') OR id IN newest"
    ))
    .bind(network)
    .fetch_all(pool)
    .await?;
    // No row: the network has had no computation here.
    let mut record = NetworkRecord {
        unfinished: Vec::new(),
        latest: None,
        uses: found.first().map_or(0, |f| f.uses),
    };
    for found in found {
        if !is_final(&found.row.status) {
            record.unfinished.push(found.row.clone());
        }
        if found.latest {
            record.latest = Some(found.row);
        }
    }
    Ok(record)
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
    let bytes_before = store_bytes(path);
    let (read, mut writer) = open(path).await?;
    let mut pruned = 0;
    loop {
        let tx = writer.begin()?;
        let n = prune(&tx, cutoff, PRUNE_BATCH)?;
        tx.commit().map_err(Error::from)?;
        pruned += n;
        if n < PRUNE_BATCH as u64 {
            break;
        }
    }
    if vacuum {
        writer.conn().execute_batch("VACUUM")?;
    }
    // A running node's readers and writes can hold the WAL for a moment: try for a few seconds.
    for _ in 0..50 {
        let busy: i64 = writer
            .conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
        if busy == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    read.close().await;
    Ok(GarbageCollected {
        pruned,
        bytes_before,
        bytes_after: store_bytes(path),
    })
}

/// The privacy budget's charges per client since `since` (ms), summed (the runtime's check and
/// `GET /v1/budget` read the same).
const SPENT_SINCE: &str = "SELECT client, COALESCE(SUM(epsilon), 0.0) AS epsilon, \
     COALESCE(SUM(delta), 0.0) AS delta, COALESCE(SUM(rho), 0.0) AS rho, COUNT(*) AS computations FROM budget_charges WHERE charged_at >= ? GROUP BY client ORDER BY client";

/// What each client has been charged since `since` (ms), for the API.
pub async fn spent_since_pool(pool: &SqlitePool, since: i64) -> Result<Vec<SpentRow>, Error> {
    Ok(sqlx::query_as::<_, SpentRow>(SPENT_SINCE)
        .bind(since)
        .fetch_all(pool)
        .await?)
}

pub async fn ping(pool: &SqlitePool) -> Result<(), Error> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(writer: &Writer, row: &ComputationRow) {
        upsert_computations(writer.conn(), &[row]).unwrap();
    }

    /// A SecureSum row with nothing else set.
    fn computation(id: &str, status: &str) -> ComputationRow {
        ComputationRow {
            id: id.into(),
            microprotocol: Some("SecureSum".into()),
            parties: None,
            parameters: None,
            digest: None,
            status: status.into(),
            machine: None,
            next_seq: 0,
            output: None,
            error: None,
            deadline_at: 0,
            created_at: 0,
            finished_at: None,
            network: None,
            client: None,
            dataset: None,
        }
    }

    async fn stored_machine(pool: &SqlitePool, id: &str) -> Option<String> {
        sqlx::query_scalar("SELECT machine FROM computations WHERE id = ?")
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_charge_is_made_once_counts_in_its_period_and_survives_pruning() {
        let dir = tempfile::tempdir().unwrap();
        let (pool, mut writer) = open(&dir.path().join("store.db")).await.unwrap();
        let charge = |computation: &str, client: &str, epsilon: f64, charged_at: i64| ChargeRow {
            computation: computation.into(),
            client: client.into(),
            epsilon,
            delta: 0.0,
            rho: 0.0,
            charged_at,
        };
        {
            let tx = writer.begin().unwrap();
            insert_charges(
                &tx,
                &[charge("c1", "analyst", 0.5, 1000), charge("c2", "analyst", 0.25, 2000)],
            )
            .unwrap();
            insert_charges(&tx, &[charge("c3", "steward", 1.0, 3000)]).unwrap();
            tx.commit().unwrap();
        }
        // A retry (or a restart's replay) of c1's charge, at another time and price, is no
        // second charge.
        insert_charges(writer.conn(), &[charge("c1", "analyst", 9.0, 5000)]).unwrap();
        let analyst = |rows: Vec<SpentRow>| rows.into_iter().find(|r| r.client == "analyst").unwrap();
        let all = analyst(spent_since(writer.conn(), i64::MIN).unwrap());
        assert_eq!((all.epsilon, all.computations), (0.75, 2));
        // Only the charges since the period's start count; the pool reads the same.
        let recent = spent_since_pool(&pool, 1500).await.unwrap();
        assert_eq!(recent.len(), 2);
        assert_eq!(
            (recent[0].client.as_str(), recent[0].epsilon, recent[0].computations),
            ("analyst", 0.25, 1)
        );
        // Pruning computations leaves the ledger as it is.
        prune(writer.conn(), i64::MAX, PRUNE_BATCH).unwrap();
        assert_eq!(analyst(spent_since(writer.conn(), i64::MIN).unwrap()).computations, 2);
    }

    #[tokio::test]
    async fn an_active_row_without_a_machine_keeps_the_stored_one_and_a_final_row_drops_it() {
        let dir = tempfile::tempdir().unwrap();
        let (pool, writer) = open(&dir.path().join("store.db")).await.unwrap();
        let mut row = ComputationRow {
            microprotocol: Some("SetIntersectionSize".into()),
            machine: Some("the state after the last step".into()),
            ..computation("c1", PENDING)
        };
        upsert(&writer, &row);
        row.status = RUNNING.into();
        row.machine = None;
        upsert(&writer, &row);
        assert_eq!(
            stored_machine(&pool, "c1").await.as_deref(),
            Some("the state after the last step")
        );
        row.machine = Some("the next state".into());
        upsert(&writer, &row);
        assert_eq!(stored_machine(&pool, "c1").await.as_deref(), Some("the next state"));
        row.status = FAILED.into();
        row.machine = None;
        upsert(&writer, &row);
        assert_eq!(stored_machine(&pool, "c1").await, None);
        // What the writer reads back is what the pool reads.
        let read = get_computations(writer.conn(), &["c1".into(), "unknown".into()]).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(
            format!("{:?}", read[0]),
            format!("{:?}", get_computation_pool(&pool, "c1").await.unwrap().unwrap())
        );
    }

    /// The outbox rows a batch inserts get their ids, in every shape of multi-row statement
    /// (kept prepared or not), and a later batch's deletions take exactly the rows they name.
    #[tokio::test]
    async fn outbox_rows_get_their_ids_and_deletions_take_exactly_the_rows_named() {
        let dir = tempfile::tempdir().unwrap();
        let (_pool, writer) = open(&dir.path().join("store.db")).await.unwrap();
        for messages in [3, 300] {
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
            insert_outbox(writer.conn(), &mut outbox).unwrap();
            let stored = all_outbox(writer.conn()).unwrap();
            assert_eq!(
                stored
                    .iter()
                    .map(|r| (r.id, r.seq, r.envelope.clone()))
                    .collect::<Vec<_>>(),
                outbox
                    .iter()
                    .map(|r| (r.id, r.seq, r.envelope.clone()))
                    .collect::<Vec<_>>()
            );

            let published: Vec<i64> = outbox.iter().skip(1).map(|r| r.id).collect();
            let finished = vec![format!("c{messages}")];
            delete_outbox(writer.conn(), &published).unwrap();
            delete_inbox(writer.conn(), &finished).unwrap();
            consume_inbox(writer.conn(), &finished).unwrap();
            let left = all_outbox(writer.conn()).unwrap();
            assert_eq!(left.iter().map(|r| r.id).collect::<Vec<_>>(), [outbox[0].id]);
            delete_outbox(writer.conn(), &[outbox[0].id]).unwrap();
        }
    }

    /// An envelope beyond a quarter of SQLite's length limit is stored in parts: it comes back
    /// whole, in its place in the queue, and its parts are deleted with its row.
    #[tokio::test]
    async fn outbox_envelopes_beyond_the_length_limit_are_stored_in_parts() {
        let dir = tempfile::tempdir().unwrap();
        let (_pool, writer) = open(&dir.path().join("store.db")).await.unwrap();
        let conn = writer.conn();
        assert_eq!(max_value_bytes(conn), 1_000_000_000);
        conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, 1000);
        let too_long = conn.execute(
            "INSERT INTO outbox_parts (outbox, idx, data) VALUES (0, 0, ?)",
            [vec![0u8; 1001]],
        );
        assert!(too_long.is_err(), "the limit holds: {too_long:?}");
        let sizes = [10, 2500, 250, 251];
        let mut outbox: Vec<OutboxRow> = sizes
            .iter()
            .enumerate()
            .map(|(seq, &size)| OutboxRow {
                id: 0,
                computation: "c".into(),
                recipient: "bob".into(),
                seq: seq as i64,
                envelope: (0..size).map(|i| (i * 7 + seq) as u8).collect(),
                created_at: 1,
            })
            .collect();
        insert_outbox(conn, &mut outbox).unwrap();
        let parts = |conn: &rusqlite::Connection| -> i64 {
            conn.query_row("SELECT count(*) FROM outbox_parts", [], |row| row.get(0))
                .unwrap()
        };
        assert_eq!(parts(conn), 10 + 2);
        let stored = all_outbox(conn).unwrap();
        // Ids in the rows' order, and each envelope whole.
        let key = |r: &OutboxRow| (r.id, r.seq, r.envelope.len());
        assert_eq!(
            stored.iter().map(key).collect::<Vec<_>>(),
            outbox.iter().map(key).collect::<Vec<_>>()
        );
        assert!(stored.iter().zip(&outbox).all(|(s, o)| s.envelope == o.envelope));
        delete_outbox(conn, &[outbox[1].id, outbox[2].id]).unwrap();
        assert_eq!(parts(conn), 2);
        let left = all_outbox(conn).unwrap();
        assert_eq!(
            left.iter().map(key).collect::<Vec<_>>(),
            [key(&outbox[0]), key(&outbox[3])]
        );
        assert_eq!(left[1].envelope, outbox[3].envelope);
        delete_outbox(conn, &[outbox[3].id]).unwrap();
        assert_eq!(parts(conn), 0);
    }

    /// A machine's bulk is stored in parts beyond a quarter of the length limit, read back
    /// whole, and deleted when its computation ends (its state is dropped) or is pruned.
    #[tokio::test]
    async fn a_bulk_is_stored_in_parts_and_goes_with_its_computations_state() {
        let dir = tempfile::tempdir().unwrap();
        let (_pool, writer) = open(&dir.path().join("store.db")).await.unwrap();
        let conn = writer.conn();
        conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, 1000);
        let parts = |id: &str| -> i64 {
            conn.query_row("SELECT count(*) FROM bulk_parts WHERE computation = ?", [id], |row| {
                row.get(0)
            })
            .unwrap()
        };
        let bulks: Vec<Vec<u8>> = [2501, 7]
            .iter()
            .map(|&n| (0..n).map(|i| (i % 251) as u8).collect())
            .collect();
        for (id, bulk) in ["c1", "c2"].iter().zip(&bulks) {
            upsert(
                &writer,
                &ComputationRow {
                    machine: Some("a state".into()),
                    ..computation(id, RUNNING)
                },
            );
            insert_bulk(conn, id, bulk).unwrap();
        }
        assert_eq!((parts("c1"), parts("c2")), (11, 1));
        assert_eq!(bulk(conn, "c1").unwrap(), bulks[0]);
        assert_eq!(bulk(conn, "c2").unwrap(), bulks[1]);
        assert_eq!(bulk(conn, "c3").unwrap(), Vec::<u8>::new(), "none stored");
        // Written again (as after a reload), it replaces what was there.
        insert_bulk(conn, "c2", &bulks[1]).unwrap();
        assert_eq!(parts("c2"), 1);

        // A step's new state keeps it; the end of the computation drops it with the state.
        upsert(
            &writer,
            &ComputationRow {
                machine: Some("the next state".into()),
                ..computation("c1", RUNNING)
            },
        );
        assert_eq!(parts("c1"), 11);
        upsert(&writer, &computation("c1", SUCCEEDED));
        assert_eq!((parts("c1"), parts("c2")), (0, 1));
        conn.execute("DELETE FROM computations WHERE id = 'c2'", []).unwrap();
        assert_eq!(parts("c2"), 0);
    }

    /// Inbox rows: a duplicate is not inserted again, and pending rows come back in arrival
    /// order, across statements of a long list.
    #[tokio::test]
    async fn the_inbox_drops_duplicates_and_returns_pending_rows_in_arrival_order() {
        let dir = tempfile::tempdir().unwrap();
        let (_pool, writer) = open(&dir.path().join("store.db")).await.unwrap();
        let rows: Vec<InboxRow> = (0..300)
            .map(|i| InboxRow {
                computation: format!("c{i}"),
                sender: "bob".into(),
                seq: 0,
                kind: "share".into(),
                body: Some(vec![i as u8]),
                received_at: 1000 - i,
                body_in_chunks: false,
            })
            .collect();
        assert_eq!(insert_inbox(writer.conn(), &rows).unwrap().len(), 300);
        assert!(insert_inbox(writer.conn(), &rows[..5]).unwrap().is_empty());
        let ids: Vec<String> = rows.iter().map(|r| r.computation.clone()).collect();
        let pending = pending_inbox(writer.conn(), &ids).unwrap();
        let order: Vec<i64> = pending.iter().map(|r| r.received_at).collect();
        assert_eq!(order, (701..=1000).collect::<Vec<_>>());
        let (retired, waiting) = retired_and_waiting(writer.conn(), &ids[..3]).unwrap();
        assert!(retired.is_empty());
        assert_eq!(waiting.len(), 3);
    }

    /// One query tells a network's unfinished computations, its newest and how many it had.
    #[tokio::test]
    async fn a_network_record_holds_the_unfinished_the_newest_and_the_count() {
        let dir = tempfile::tempdir().unwrap();
        let (pool, writer) = open(&dir.path().join("store.db")).await.unwrap();
        let empty = network_record(&pool, "n1").await.unwrap();
        assert_eq!(
            (empty.unfinished.len(), empty.latest.is_none(), empty.uses),
            (0, true, 0)
        );
        let row = |id: &str, status: &str, created_at: i64, network: &str| ComputationRow {
            created_at,
            network: Some(network.into()),
            ..computation(id, status)
        };
        for r in [
            row("a", SUCCEEDED, 1, "n1"),
            row("b", RUNNING, 2, "n1"),
            row("c", FAILED, 3, "n1"),
            row("d", PENDING, 4, "n2"),
        ] {
            upsert(&writer, &r);
        }
        let record = network_record(&pool, "n1").await.unwrap();
        let ids = |rows: &[ComputationRow]| rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&record.unfinished), ["b"]);
        assert_eq!(record.latest.map(|r| r.id).as_deref(), Some("c"));
        assert_eq!(record.uses, 3);
        let other = network_record(&pool, "n2").await.unwrap();
        assert_eq!(
            (ids(&other.unfinished), other.latest.map(|r| r.id), other.uses),
            (vec!["d".to_string()], Some("d".into()), 1)
        );
    }

    fn pages(writer: &Writer) -> (i64, i64) {
        let pragma = |name: &str| {
            writer
                .conn()
                .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .unwrap()
        };
        (pragma("page_count"), pragma("freelist_count"))
    }

    /// Pruning gives the pruned rows' pages back: the database ends about as small as before
    /// they came, not with them all on its free list.
    #[tokio::test]
    async fn a_prune_gives_its_pages_back() {
        let dir = tempfile::tempdir().unwrap();
        let (_pool, mut writer) = open(&dir.path().join("store.db")).await.unwrap();
        let (empty, _) = pages(&writer);
        let rows: Vec<ComputationRow> = (0..2000)
            .map(|i| ComputationRow {
                output: Some("x".repeat(1000)),
                finished_at: Some(1),
                ..computation(&format!("c{i}"), SUCCEEDED)
            })
            .collect();
        upsert_computations(writer.conn(), &rows.iter().collect::<Vec<_>>()).unwrap();
        let (full, _) = pages(&writer);
        assert!(full > empty + 400, "{empty} pages empty, {full} full");
        let tx = writer.begin().unwrap();
        assert_eq!(prune(&tx, 2, PRUNE_BATCH).unwrap(), 2000);
        tx.commit().unwrap();
        let (pruned, free) = pages(&writer);
        assert_eq!(free, 0);
        // What is left is the retired ids' (about 50 bytes each).
        assert!(pruned < empty + 60, "{empty} pages empty, {pruned} after the prune");
    }

    /// A store made without incremental auto-vacuum (before it existed) is converted at open,
    /// its rows kept.
    #[tokio::test]
    async fn an_older_store_is_made_incremental_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch("PRAGMA journal_mode = wal; CREATE TABLE kept (x); INSERT INTO kept VALUES (42);")
            .unwrap();
        let mode =
            |conn: &rusqlite::Connection| -> i64 { conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).unwrap() };
        assert_eq!(mode(&old), 0);
        drop(old);
        let (pool, writer) = open(&path).await.unwrap();
        assert_eq!(mode(writer.conn()), 2, "incremental");
        let kept: i64 = sqlx::query_scalar("SELECT x FROM kept").fetch_one(&pool).await.unwrap();
        assert_eq!(kept, 42);
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

    /// Receipt signatures: a party's first stands; those of computations not stored here count
    /// against the sender's unsolicited bytes and expire as its messages do; pruning a
    /// computation prunes its signatures.
    #[tokio::test]
    async fn receipts_keep_the_first_signature_count_as_unsolicited_and_go_with_their_computation() {
        let dir = tempfile::tempdir().unwrap();
        let (pool, writer) = open(&dir.path().join("store.db")).await.unwrap();
        let conn = writer.conn();
        let receipt = |computation: &str, signature: &str| ReceiptRow {
            computation: computation.into(),
            party: "bob".into(),
            definition_digest: "d".repeat(64),
            outcome: SUCCEEDED.into(),
            outcome_digest: "o".repeat(64),
            key_id: "k1".into(),
            signature: signature.into(),
            path: "r".to_string() + &"s".repeat(64),
            received_at: 10,
            unsolicited: computation == "unknown",
        };
        let mut known = computation("known", SUCCEEDED);
        known.finished_at = Some(5);
        upsert(&writer, &known);
        let stored = insert_receipts(conn, &[receipt("known", "first"), receipt("unknown", "x")]).unwrap();
        assert_eq!(stored.len(), 2);
        assert!(insert_receipts(conn, &[receipt("known", "second")]).unwrap().is_empty());
        assert_eq!(receipts_pool(&pool, "known").await.unwrap()[0].signature, "first");
        // The unknown computation's only: 64 + 9 + 64 + 2 + 1 + 65 bytes.
        assert_eq!(unsolicited_bytes(conn, "bob").unwrap(), 205);
        assert_eq!(unsolicited_bytes(conn, "carol").unwrap(), 0);
        assert_eq!(expire_orphans(conn, 11, 0).unwrap(), 1);
        assert_eq!(unsolicited_bytes(conn, "bob").unwrap(), 0);
        assert_eq!(receipts_pool(&pool, "known").await.unwrap().len(), 1);
        assert_eq!(prune(conn, 6, 10).unwrap(), 1);
        assert!(receipts_pool(&pool, "known").await.unwrap().is_empty());
    }
}
