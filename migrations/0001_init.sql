-- fsc node store. Times are milliseconds since the Unix epoch.

-- One row per computation this node takes part in. A row whose microprotocol is NULL is a
-- tombstone: a peer aborted the computation before our client submitted it.
CREATE TABLE computations (
    id            TEXT PRIMARY KEY,
    microprotocol TEXT,
    parties       TEXT,              -- JSON array of party ids, in protocol order
    parameters    TEXT,              -- JSON object, normalised (defaults filled in)
    digest        BLOB,              -- SHA-256 of the definition; every data message carries it
    input_mac     BLOB,              -- HMAC of the local input: tells a retry from a conflict
    status        TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
    machine       TEXT,              -- engine state (JSON) while active; NULL once final
    next_seq      INTEGER NOT NULL DEFAULT 0,
    output        TEXT,              -- JSON {"inputs": n, "result": {...}}
    error         TEXT,              -- JSON {"code", "message", "party"?}
    deadline_at   INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    finished_at   INTEGER
);
CREATE INDEX computations_by_created ON computations (created_at DESC, id DESC);
CREATE INDEX computations_by_status ON computations (status, created_at DESC, id DESC);

-- Received messages, unique per (computation, sender, seq): a redelivered or replayed message
-- is rejected here. `body` holds the opened payload while the computation has not consumed it;
-- rows of a finished computation are deleted with its last step.
CREATE TABLE inbox (
    computation TEXT NOT NULL,
    sender      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    body        BLOB,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (computation, sender, seq)
) WITHOUT ROWID;
CREATE INDEX inbox_pending_by_age ON inbox (received_at) WHERE body IS NOT NULL;

-- Pieces of messages larger than the broker's max payload, until all have arrived.
CREATE TABLE chunks (
    computation TEXT NOT NULL,
    sender      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    total       INTEGER NOT NULL,
    data        BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (computation, sender, seq, idx)
) WITHOUT ROWID;

-- Sealed messages committed with the step that produced them, deleted once the broker has
-- acknowledged them. A restart re-publishes what is left, byte for byte.
CREATE TABLE outbox (
    computation TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    envelope    BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (computation, recipient, seq)
) WITHOUT ROWID;
