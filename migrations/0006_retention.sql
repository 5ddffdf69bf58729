-- Finished computations are pruned after the node's retention; their ids stay here, so that an
-- id is never accepted twice (a late or replayed message, or a re-submission, is refused).
CREATE TABLE retired (
    id          TEXT PRIMARY KEY,
    finished_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX computations_by_finish ON computations (finished_at) WHERE finished_at IS NOT NULL;
