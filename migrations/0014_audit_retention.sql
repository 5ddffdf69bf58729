-- Audit retention (`audit_retention_s` in node.toml; unset: the log is kept for good). Pruning
-- removes the oldest entries and keeps the last removed entry's seq and hash here, the anchor
-- from which `fsc audit verify` checks the rest of the chain. The node may delete only entries at
-- or below the anchor, and the anchor only moves forward.
CREATE TABLE audit_anchor (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash BLOB NOT NULL
);
CREATE TRIGGER audit_anchor_forward BEFORE UPDATE ON audit_anchor WHEN NEW.seq < OLD.seq
BEGIN SELECT RAISE(ABORT, 'the audit anchor only moves forward'); END;
CREATE TRIGGER audit_anchor_kept BEFORE DELETE ON audit_anchor
BEGIN SELECT RAISE(ABORT, 'the audit anchor is kept'); END;
DROP TRIGGER audit_append_only_delete;
CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit
WHEN OLD.seq > COALESCE((SELECT seq FROM audit_anchor), 0)
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
