-- Receipts (issue 24): each participant's signature over how a computation ended
-- (crates/node/src/receipt.rs). This node's own row is written in the transaction that stores the
-- computation's outcome; a peer's when its `receipt` message arrives, checked against the roster.
-- One row per computation and party: the first signature stands. Pruned with its computation;
-- rows of computations not known here count against the sender's max_unsolicited_bytes and expire
-- like its other unsolicited messages.
CREATE TABLE receipts (
    computation       TEXT NOT NULL,
    party             TEXT NOT NULL,
    definition_digest TEXT NOT NULL,
    outcome           TEXT NOT NULL,
    outcome_digest    TEXT NOT NULL,
    key_id            TEXT NOT NULL,
    signature         TEXT NOT NULL,
    received_at       INTEGER NOT NULL,
    PRIMARY KEY (computation, party)
) WITHOUT ROWID;
