-- Receipts signed in groups (crates/node/src/receipt.rs): a node signs up to 8 statements of one
-- batch with one Ed25519 signature over the root of a Merkle tree of them, and each signature row
-- keeps its statement's path to that root (siblings, space-separated; empty for a statement signed
-- alone). And a rowid table with a unique index in place of the WITHOUT ROWID table: a row is
-- appended at the table's end rather than inserted at its random key among every row before it,
-- which under a batch of sums had the runtime read and split pages all over a table of many MB.
-- `unsolicited` marks a row stored for a computation not stored here (then): the sender's
-- max_unsolicited_bytes counts only those, through a small index, not by a scan of every row.
CREATE TABLE receipts_by_arrival (
    computation       TEXT NOT NULL,
    party             TEXT NOT NULL,
    definition_digest TEXT NOT NULL,
    outcome           TEXT NOT NULL,
    outcome_digest    TEXT NOT NULL,
    key_id            TEXT NOT NULL,
    signature         TEXT NOT NULL,
    path              TEXT NOT NULL DEFAULT '',
    received_at       INTEGER NOT NULL,
    unsolicited       INTEGER NOT NULL DEFAULT 0
);
INSERT INTO receipts_by_arrival (computation, party, definition_digest, outcome, outcome_digest, key_id, signature, received_at, unsolicited)
    SELECT computation, party, definition_digest, outcome, outcome_digest, key_id, signature, received_at,
           computation NOT IN (SELECT id FROM computations) FROM receipts;
DROP TABLE receipts;
ALTER TABLE receipts_by_arrival RENAME TO receipts;
CREATE UNIQUE INDEX receipts_by_computation ON receipts (computation, party);
CREATE INDEX receipts_unsolicited_by_party ON receipts (party) WHERE unsolicited = 1;
