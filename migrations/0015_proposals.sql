-- Proposals (issue 24): computations a peer has started that this node's client has not
-- submitted. A row is what the sender's sealed, authenticated first message told this node (its
-- definition and deadline); the sender is the proposer, and the first proposal of a computation
-- stands. A row counts against its proposer's max_unsolicited_bytes and expires with its other
-- unsolicited messages. A submission here deletes it; once the computation exists here otherwise
-- (declined, or failed by a peer's abort) the row is no longer listed, and the next sweep deletes
-- it.
CREATE TABLE proposals (
    computation   TEXT PRIMARY KEY,
    proposer      TEXT NOT NULL,
    microprotocol TEXT NOT NULL,
    parties       TEXT NOT NULL,
    parameters    TEXT NOT NULL,
    deadline_at   INTEGER NOT NULL,
    received_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX proposals_by_proposer ON proposals (proposer);
