//! The audit log: who did what on this node, hash-chained, in the store's `audit` table
//! (migration 0011).
//!
//! This module owns the entry's format, its canonical bytes and hash, appending entries and
//! checking the chain. Entries are appended by the runtime's one writer, inside the transaction
//! of the action they record (persist, then act: a client is answered only once its action's
//! entry is committed), so the chain is one line and needs no lock. Reads change nothing else:
//! their entries go with the runtime's next transaction, unwaited (`RuntimeHandle::record_reads`). It must not record input
//! values or outputs: an entry names clients, computation ids, definition digests, parties,
//! outcomes and reason codes, never what a client sent or received.
//!
//! Each entry's hash is SHA-256 over the previous entry's hash (32 zero bytes for the first) and
//! the entry's canonical bytes, so changing, removing or inserting a row breaks the chain at that
//! row; [`verify`] names the first such row. The computations' retention never prunes the log;
//! its own, `audit_retention_s` (unset: keep for good), removes the oldest entries and keeps the
//! last removed one's sequence number and hash as the chain's anchor (migration 0014), from
//! which the rest still verifies.

use crate::config::ApiClient;
use crate::config::datasets::DatasetConfig;
use crate::config::policy::Policy;
use crate::error::Error;
use crate::store::{self, AuditRow};
use ring::digest;
use rusqlite::{Connection, OpenFlags, params};
use serde::Serialize;
use serde_json::{Value, json};
use std::path::Path;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A client submitted a computation (v1, a batch item, or the federatedsecure API).
pub const SUBMIT: &str = "submit";
/// A client read a computation's final state (its output or failure).
pub const READ: &str = "read";
/// A client read a computation's receipt (`crate::receipt`).
pub const RECEIPT: &str = "receipt";
/// A client listed computations; the entry names the final ones it was shown.
pub const LIST: &str = "list";
/// A client cancelled a computation.
pub const CANCEL: &str = "cancel";
/// A client declined a proposal (`runtime::proposals`).
pub const DECLINE: &str = "decline";
/// A client downloaded a federatedsecure representation that holds a computation's result.
pub const DOWNLOAD: &str = "download";
pub const COMPUTATION_STARTED: &str = "computation_started";
pub const COMPUTATION_FINISHED: &str = "computation_finished";
/// The node started with other `[[clients]]` than the last entry of this kind recorded.
pub const CLIENTS_CHANGED: &str = "clients_changed";
/// The node started with another `[policy]` than the last entry of this kind recorded.
pub const POLICY_CHANGED: &str = "policy_changed";
/// The node started with other `[[datasets]]` (what its clients may have it read) than the last
/// entry of this kind recorded.
pub const DATASETS_CHANGED: &str = "datasets_changed";
/// A computation with `dp` charged the client's privacy budget (`crate::budget`): ε, δ, ρ.
pub const BUDGET_CHARGE: &str = "budget_charge";

/// The hash before the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// What one entry records, before it has its place in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The API client; `None` for what no client asked (a helper's computation, a peer's abort).
    pub client: Option<String>,
    pub action: &'static str,
    pub computation: Option<String>,
    /// Names, codes and digests only (see the module's doc).
    pub detail: Value,
}

impl Event {
    pub fn new(client: Option<&str>, action: &'static str, computation: Option<String>, detail: Value) -> Event {
        Event {
            client: client.map(str::to_string),
            action,
            computation,
            detail,
        }
    }
}

/// The chain's last entry: its sequence number (0 before the first) and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: [u8; 32],
}

/// One stored entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub seq: i64,
    /// Unix ms.
    pub time: i64,
    pub client: Option<String>,
    pub action: String,
    pub computation: Option<String>,
    /// JSON text, as stored (and hashed).
    pub detail: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

impl Entry {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
        Ok(Entry {
            seq: row.get("seq")?,
            time: row.get("time")?,
            client: row.get("client")?,
            action: row.get("action")?,
            computation: row.get("computation")?,
            detail: row.get("detail")?,
            prev_hash: row.get("prev_hash")?,
            hash: row.get("hash")?,
        })
    }

    /// The entry as `fsc audit log` prints it (one JSON line).
    pub fn json(&self) -> Value {
        #[derive(Serialize)]
        struct Shown<'a> {
            seq: i64,
            time: String,
            client: &'a Option<String>,
            action: &'a str,
            computation: &'a Option<String>,
            detail: Value,
            prev_hash: String,
            hash: String,
        }
        let detail = serde_json::from_str(&self.detail).unwrap_or_else(|_| Value::String(self.detail.clone()));
        json!(Shown {
            seq: self.seq,
            time: rfc3339(self.time),
            client: &self.client,
            action: &self.action,
            computation: &self.computation,
            detail,
            prev_hash: hex(&self.prev_hash),
            hash: hex(&self.hash),
        })
    }
}

/// The bytes an entry's hash covers besides the previous hash: a JSON array of its fields, with
/// the detail as its stored text (so the hash does not depend on how JSON is re-serialised).
pub fn canonical(
    seq: i64,
    time: i64,
    client: Option<&str>,
    action: &str,
    computation: Option<&str>,
    detail: &str,
) -> Vec<u8> {
    // A tuple serialises as the same compact JSON array as `json!([...])` would, without
    // building (and copying the strings into) a `Value` first.
    serde_json::to_vec(&("fsc/audit/v1", seq, time, client, action, computation, detail))
        .expect("JSON values serialise")
}

/// SHA-256 over the previous hash and the entry's canonical bytes.
pub fn chain_hash(prev: &[u8], canonical: &[u8]) -> [u8; 32] {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(prev);
    context.update(canonical);
    context.finish().as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// The chain's last entry as stored (the anchor if pruning left none).
pub fn head(conn: &Connection) -> Result<Head, Error> {
    let last = one_head(conn, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?;
    last.map_or_else(|| anchor(conn), Ok)
}

/// The last pruned entry, from which the stored chain goes on (before any pruning: the genesis).
pub fn anchor(conn: &Connection) -> Result<Head, Error> {
    let anchor = one_head(conn, "SELECT seq, hash FROM audit_anchor")?;
    Ok(anchor.unwrap_or(Head { seq: 0, hash: GENESIS }))
}

fn one_head(conn: &Connection, sql: &str) -> Result<Option<Head>, Error> {
    let found = conn
        .prepare_cached(sql)?
        .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?)))?
        .next()
        .transpose()?;
    Ok(found.map(|(seq, hash)| Head {
        seq,
        hash: hash.try_into().unwrap_or(GENESIS),
    }))
}

/// Removes at most `limit` of the oldest entries written before `cutoff` (unix ms), never the
/// last one (the head a new entry follows), and moves the anchor to the last removed, in the
/// caller's transaction. Stops at the first entry written at or after `cutoff`, so a clock that
/// stepped back never removes a newer entry. Returns how many.
pub fn prune(conn: &Connection, cutoff: i64, limit: i64) -> Result<u64, Error> {
    let mut statement = conn.prepare_cached(
        "SELECT seq, time, hash FROM audit WHERE seq < (SELECT MAX(seq) FROM audit) ORDER BY seq LIMIT ?1",
    )?;
    let mut rows = statement.query([limit])?;
    let mut last = None;
    while let Some(row) = rows.next()? {
        if row.get::<_, i64>(1)? >= cutoff {
            break;
        }
        last = Some((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(2)?));
    }
    let Some((seq, hash)) = last else {
        return Ok(0);
    };
    conn.execute(
        "INSERT INTO audit_anchor (id, seq, hash) VALUES (1, ?1, ?2) \
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        params![seq, hash],
    )?;
    Ok(conn.execute("DELETE FROM audit WHERE seq <= ?1", [seq])? as u64)
}

/// Appends `events` at `time` after `head`, inside the caller's transaction, and moves `head` on.
/// If the transaction is rolled back, the caller reads the head again ([`head`]).
pub fn append(conn: &Connection, head: &mut Head, time: i64, events: &[Event]) -> Result<(), Error> {
    if events.is_empty() {
        return Ok(());
    }
    let mut rows = Vec::with_capacity(events.len());
    for event in events {
        let seq = head.seq + 1;
        // Serialised once: these bytes are both stored and, within the canonical bytes, hashed.
        let detail = event.detail.to_string();
        let bytes = canonical(
            seq,
            time,
            event.client.as_deref(),
            event.action,
            event.computation.as_deref(),
            &detail,
        );
        let hash = chain_hash(&head.hash, &bytes);
        rows.push(AuditRow {
            seq,
            time,
            client: event.client.clone(),
            action: event.action,
            computation: event.computation.clone(),
            detail,
            prev_hash: head.hash,
            hash,
        });
        *head = Head { seq, hash };
    }
    store::insert_audit(conn, &rows)?;
    Ok(())
}

/// Entries from `since` (unix ms) on, of `client` only if given, oldest first.
pub fn entries(conn: &Connection, since: Option<i64>, client: Option<&str>) -> Result<Vec<Entry>, Error> {
    let mut statement =
        conn.prepare("SELECT * FROM audit WHERE time >= ?1 AND (?2 IS NULL OR client = ?2) ORDER BY seq")?;
    let rows = statement.query_map(params![since.unwrap_or(i64::MIN), client], Entry::read)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The first entry where the chain breaks, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub seq: i64,
    pub why: String,
}

/// A chain that verified: from its anchor (the genesis unless entries were pruned) to its head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub anchor: Head,
    pub head: Head,
}

/// Checks the whole stored chain from its anchor: sequence numbers on from the anchor's without
/// gaps, each entry's `prev_hash` the previous entry's (the anchor's) hash, and each hash the
/// hash of its entry. Returns the anchor and the head, or the first entry that breaks it.
pub fn verify(conn: &Connection) -> Result<Result<Verified, Broken>, Error> {
    let anchor = anchor(conn)?;
    let mut statement = conn.prepare("SELECT * FROM audit ORDER BY seq")?;
    let mut rows = statement.query([])?;
    let mut head = anchor;
    while let Some(row) = rows.next()? {
        let entry = Entry::read(row)?;
        if let Err(why) = check(&head, &entry) {
            return Ok(Err(Broken { seq: entry.seq, why }));
        }
        head = Head {
            seq: entry.seq,
            hash: entry.hash.try_into().expect("checked: 32 bytes"),
        };
    }
    Ok(Ok(Verified { anchor, head }))
}

/// Whether `entry` follows `previous` in the chain.
fn check(previous: &Head, entry: &Entry) -> Result<(), String> {
    if entry.seq != previous.seq + 1 {
        return Err(format!(
            "sequence number {} follows {} (entries are missing or inserted)",
            entry.seq, previous.seq
        ));
    }
    if entry.prev_hash != previous.hash {
        return Err("its prev_hash is not the previous entry's hash".into());
    }
    let bytes = canonical(
        entry.seq,
        entry.time,
        entry.client.as_deref(),
        &entry.action,
        entry.computation.as_deref(),
        &entry.detail,
    );
    if entry.hash[..] != chain_hash(&entry.prev_hash, &bytes)[..] {
        return Err("its hash does not match its content (the entry was changed)".into());
    }
    Ok(())
}

/// Entries for what changed in the node's clients, policy and datasets since the last entries
/// of their kinds: written when the node starts. Digests and names only (a client's token is
/// never in the config, its hash is; the digest covers it, so a new token is recorded too).
pub fn config_changes(
    conn: &Connection,
    clients: &[ApiClient],
    policy: &Policy,
    datasets: &[DatasetConfig],
) -> Result<Vec<Event>, Error> {
    let mut events = Vec::new();
    let names: Vec<Value> = clients
        .iter()
        .map(|c| json!({"name": c.name, "admin": c.admin, "monitor": c.monitor}))
        .collect();
    let dataset_names: Vec<&str> = datasets.iter().map(|d| d.name.as_str()).collect();
    let sections = [
        (CLIENTS_CHANGED, config_digest(clients), Some(("clients", json!(names)))),
        (POLICY_CHANGED, config_digest(policy), None),
        (
            DATASETS_CHANGED,
            config_digest(datasets),
            Some(("datasets", json!(dataset_names))),
        ),
    ];
    for (action, digest, shown) in sections {
        let last: Option<String> = conn
            .prepare_cached("SELECT detail FROM audit WHERE action = ? ORDER BY seq DESC LIMIT 1")?
            .query_map([action], |row| row.get(0))?
            .next()
            .transpose()?;
        let last_digest = last
            .and_then(|d| serde_json::from_str::<Value>(&d).ok())
            .and_then(|d| d["digest"].as_str().map(str::to_string));
        if last_digest.as_deref() != Some(digest.as_str()) {
            let mut detail = json!({"digest": digest});
            if let Some((key, names)) = shown {
                detail[key] = names;
            }
            events.push(Event::new(None, action, None, detail));
        }
    }
    Ok(events)
}

/// SHA-256, hex, of a config section as JSON with its keys sorted (serde_json's map is ordered).
fn config_digest<T: Serialize + ?Sized>(section: &T) -> String {
    let value = serde_json::to_value(section).expect("config sections serialise");
    let bytes = serde_json::to_vec(&value).expect("JSON values serialise");
    hex(digest::digest(&digest::SHA256, &bytes).as_ref())
}

/// Opens a store file to read its audit log only: a copy a data protection officer checks, or a
/// running node's store (WAL readers do not block its writer).
pub fn open_read_only(path: &Path) -> Result<Connection, Error> {
    if !path.exists() {
        return Err(Error::Config(format!("no store at {}", path.display())));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

/// A time as `--since` takes it: RFC 3339 (`2026-12-07T04:00:00Z`) or unix milliseconds.
pub fn parse_time(text: &str) -> Result<i64, Error> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|e| {
            Error::Config(format!(
                "{text:?} is neither an RFC 3339 time nor unix milliseconds: {e}"
            ))
        })
}

fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory store with the migrated audit table.
    fn store() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for migration in [
            include_str!("../../../migrations/0011_audit.sql"),
            include_str!("../../../migrations/0014_audit_retention.sql"),
        ] {
            conn.execute_batch(migration).unwrap();
        }
        conn
    }

    fn events() -> Vec<Event> {
        vec![
            Event::new(Some("analyst"), SUBMIT, Some("c1".into()), json!({"api": "v1"})),
            Event::new(Some("analyst"), READ, Some("c1".into()), json!({"status": "succeeded"})),
            Event::new(
                None,
                COMPUTATION_FINISHED,
                Some("c1".into()),
                json!({"outcome": "failed"}),
            ),
        ]
    }

    fn appended() -> (Connection, Head) {
        let conn = store();
        let mut head = head(&conn).unwrap();
        append(&conn, &mut head, 1000, &events()).unwrap();
        append(&conn, &mut head, 2000, &events()[..1]).unwrap();
        (conn, head)
    }

    /// Changes a stored entry as someone with the file would: past the append-only triggers.
    fn tamper(conn: &Connection, sql: &str) {
        conn.execute_batch(&format!(
            "DROP TRIGGER audit_append_only_update; DROP TRIGGER audit_append_only_delete; {sql}"
        ))
        .unwrap();
    }

    /// The canonical bytes are the README's: the compact JSON array, as `json!` writes it, so
    /// chains written before they were serialised from a tuple still verify.
    #[test]
    fn canonical_bytes_are_the_compact_json_array() {
        let bytes = canonical(7, 1000, Some("analyst"), SUBMIT, None, r#"{"api":"v1"}"#);
        let array = json!(["fsc/audit/v1", 7, 1000, "analyst", SUBMIT, null, r#"{"api":"v1"}"#]);
        assert_eq!(bytes, serde_json::to_vec(&array).unwrap());
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"["fsc/audit/v1",7,1000,"analyst","submit",null,"{\"api\":\"v1\"}"]"#
        );
    }

    #[test]
    fn an_appended_chain_verifies_and_its_head_is_the_stored_one() {
        let (conn, head_after) = appended();
        assert_eq!(head_after.seq, 4);
        assert_eq!(head(&conn).unwrap(), head_after);
        let genesis = Head { seq: 0, hash: GENESIS };
        assert_eq!(
            verify(&conn).unwrap(),
            Ok(Verified {
                anchor: genesis,
                head: head_after
            })
        );
        let first = &entries(&conn, None, None).unwrap()[0];
        assert_eq!(first.prev_hash, GENESIS);
        let bytes = canonical(1, 1000, Some("analyst"), SUBMIT, Some("c1"), r#"{"api":"v1"}"#);
        assert_eq!(first.hash, chain_hash(&GENESIS, &bytes));
    }

    #[test]
    fn the_empty_chain_verifies() {
        let genesis = Head { seq: 0, hash: GENESIS };
        assert_eq!(
            verify(&store()).unwrap(),
            Ok(Verified {
                anchor: genesis,
                head: genesis
            })
        );
    }

    #[test]
    fn the_node_cannot_change_or_delete_an_entry() {
        let (conn, _) = appended();
        assert!(conn.execute("UPDATE audit SET client = 'x' WHERE seq = 2", []).is_err());
        assert!(conn.execute("DELETE FROM audit WHERE seq = 4", []).is_err());
    }

    /// Pruning removes the oldest entries before the cutoff, never the head, and the rest verifies
    /// from the anchor; the node still cannot delete what is above it, nor move it back.
    #[test]
    fn pruned_entries_leave_an_anchor_the_rest_verifies_from() {
        let (conn, last) = appended();
        let third = entries(&conn, None, None).unwrap()[2].clone();
        // Entries 1-3 were written at 1000, the 4th at 2000: a cutoff after all keeps the head.
        assert_eq!(prune(&conn, 1500, 2).unwrap(), 2);
        assert_eq!(prune(&conn, 5000, 100).unwrap(), 1);
        assert_eq!(prune(&conn, 5000, 100).unwrap(), 0, "the head stays");
        let anchor_now = Head {
            seq: 3,
            hash: third.hash.clone().try_into().unwrap(),
        };
        assert_eq!(anchor(&conn).unwrap(), anchor_now);
        assert_eq!(
            verify(&conn).unwrap(),
            Ok(Verified {
                anchor: anchor_now,
                head: last
            })
        );
        let mut head_now = head(&conn).unwrap();
        assert_eq!(head_now, last);
        append(&conn, &mut head_now, 6000, &events()[..1]).unwrap();
        assert_eq!(verify(&conn).unwrap().unwrap().head, head_now);
        assert!(conn.execute("DELETE FROM audit WHERE seq = 4", []).is_err());
        assert!(conn.execute("UPDATE audit_anchor SET seq = 1", []).is_err());
        assert!(conn.execute("DELETE FROM audit_anchor", []).is_err());
        // An anchor that does not match what follows breaks the chain at the first entry after it.
        tamper(
            &conn,
            "DROP TRIGGER audit_anchor_forward; UPDATE audit_anchor SET hash = zeroblob(32)",
        );
        assert_eq!(verify(&conn).unwrap().unwrap_err().seq, 4);
    }

    /// Where the chain breaks after `sql` changed the appended entries.
    fn broken_after(sql: &str) -> Broken {
        let (conn, _) = appended();
        tamper(&conn, sql);
        verify(&conn).unwrap().unwrap_err()
    }

    #[test]
    fn a_changed_or_removed_entry_is_named() {
        let changed = broken_after("UPDATE audit SET client = 'mallory' WHERE seq = 2");
        assert_eq!(changed.seq, 2);
        assert!(changed.why.contains("changed"), "{}", changed.why);
        let removed = broken_after("DELETE FROM audit WHERE seq = 3");
        assert_eq!(removed.seq, 4, "named at the gap");
        assert!(removed.why.contains("missing"), "{}", removed.why);
    }

    #[test]
    fn a_changed_hash_is_named_at_its_entry_or_the_next() {
        let (conn, _) = appended();
        // Rewriting an entry and its hash consistently still breaks the next entry's link.
        let entry = entries(&conn, None, None).unwrap().remove(1);
        let detail = r#"{"status":"failed"}"#;
        let bytes = canonical(2, entry.time, entry.client.as_deref(), READ, Some("c1"), detail);
        let hash = chain_hash(&entry.prev_hash, &bytes);
        conn.execute_batch("DROP TRIGGER audit_append_only_update").unwrap();
        conn.execute(
            "UPDATE audit SET detail = ?, hash = ? WHERE seq = 2",
            params![detail, &hash[..]],
        )
        .unwrap();
        let broken = verify(&conn).unwrap().unwrap_err();
        assert_eq!(broken.seq, 3);
        assert!(broken.why.contains("prev_hash"), "{}", broken.why);
    }

    #[test]
    fn entries_are_filtered_by_time_and_client() {
        let (conn, _) = appended();
        assert_eq!(entries(&conn, Some(1500), None).unwrap().len(), 1);
        assert_eq!(entries(&conn, None, Some("analyst")).unwrap().len(), 3);
        assert_eq!(entries(&conn, None, Some("nobody")).unwrap().len(), 0);
    }

    #[test]
    fn config_changes_are_recorded_once_until_they_change_again() {
        let conn = store();
        let mut head = head(&conn).unwrap();
        let clients = vec![ApiClient {
            name: "analyst".into(),
            token_sha256: "00".into(),
            admin: false,
            monitor: false,
            datasets: Vec::new(),
        }];
        let policy = Policy::default();
        let first = config_changes(&conn, &clients, &policy, &[]).unwrap();
        assert_eq!(
            first.iter().map(|e| e.action).collect::<Vec<_>>(),
            [CLIENTS_CHANGED, POLICY_CHANGED, DATASETS_CHANGED]
        );
        append(&conn, &mut head, 1, &first).unwrap();
        assert!(config_changes(&conn, &clients, &policy, &[]).unwrap().is_empty());
        let mut rotated = clients.clone();
        rotated[0].token_sha256 = "11".into();
        let second = config_changes(&conn, &rotated, &policy, &[]).unwrap();
        assert_eq!(second.iter().map(|e| e.action).collect::<Vec<_>>(), [CLIENTS_CHANGED]);
        append(&conn, &mut head, 2, &second).unwrap();
        let labs: DatasetConfig = toml::from_str(
            "name = \"labs\"\ncolumns = [{name = \"age\", type = \"integer\"}]\ncsv = {path = \"labs.csv\"}",
        )
        .unwrap();
        let third = config_changes(&conn, &rotated, &policy, &[labs]).unwrap();
        assert_eq!(third.iter().map(|e| e.action).collect::<Vec<_>>(), [DATASETS_CHANGED]);
        assert_eq!(third[0].detail["datasets"], json!(["labs"]));
    }

    #[test]
    fn times_are_rfc3339_or_milliseconds() {
        assert_eq!(parse_time("1000").unwrap(), 1000);
        assert_eq!(parse_time("1970-01-01T00:00:01Z").unwrap(), 1000);
        assert!(parse_time("yesterday").is_err());
    }
}
