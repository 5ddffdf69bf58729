-- The inbox and the chunks hold message bodies of up to tens of megabytes (a PSI's lists). In a
-- WITHOUT ROWID table the b-tree's interior pages hold copies of whole rows, so every split or
-- merge next to a large row copied (and freed) its body: beside one 32 MB body, storing or
-- deleting a SecureSum's four small inbox rows took up to 1.8 s, and stalled the node. Rowid
-- tables keep each body once, in a leaf; the primary key becomes a separate index of keys only.
CREATE TABLE inbox_by_rowid (
    computation TEXT NOT NULL,
    sender      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    body        BLOB,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (computation, sender, seq)
);
INSERT INTO inbox_by_rowid (computation, sender, seq, kind, body, received_at)
    SELECT computation, sender, seq, kind, body, received_at FROM inbox;
DROP TABLE inbox;
ALTER TABLE inbox_by_rowid RENAME TO inbox;
CREATE INDEX inbox_pending_by_age ON inbox (received_at) WHERE body IS NOT NULL;

CREATE TABLE chunks_by_rowid (
    computation TEXT NOT NULL,
    sender      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    total       INTEGER NOT NULL,
    data        BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (computation, sender, seq, idx)
);
INSERT INTO chunks_by_rowid (computation, sender, seq, idx, total, data, received_at)
    SELECT computation, sender, seq, idx, total, data, received_at FROM chunks;
DROP TABLE chunks;
ALTER TABLE chunks_by_rowid RENAME TO chunks;
CREATE INDEX chunks_by_sender ON chunks (sender);
