-- The outbox becomes a queue in insertion order: rows are appended at the end of the table
-- and deleted from its start once published, instead of landing at random places of a
-- (computation, recipient, seq) key, which dirtied a page per message in every commit.
-- Keys stay unique by construction (a sender numbers its messages itself).
CREATE TABLE outbox_queue (
    id          INTEGER PRIMARY KEY,
    computation TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    envelope    BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
INSERT INTO outbox_queue (computation, recipient, seq, envelope, created_at)
    SELECT computation, recipient, seq, envelope, created_at FROM outbox ORDER BY created_at;
DROP TABLE outbox;
ALTER TABLE outbox_queue RENAME TO outbox;
