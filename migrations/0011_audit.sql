-- The audit log (issue 24): one row per API action and per computation's start and end, each
-- written in the transaction of what it records. Hash-chained: `hash` is SHA-256 over
-- `prev_hash` and the entry's canonical bytes (crates/node/src/audit.rs), so a changed, removed
-- or inserted row breaks the chain at that row (`fsc audit verify`). Retention never prunes it.
CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY,
    time        INTEGER NOT NULL,
    client      TEXT,
    action      TEXT NOT NULL,
    computation TEXT,
    detail      TEXT NOT NULL,
    prev_hash   BLOB NOT NULL,
    hash        BLOB NOT NULL
);
-- Append-only for the node: a row that changes or goes away has been changed by hand, and the
-- chain says where.
CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
