-- A message that arrived in chunks and must wait (for a long engine step, or for its computation
-- to be submitted here) keeps its body in its chunks, sealed, instead of a second, opened copy in
-- the inbox: writing a 32 MB copy inside the runtime's transaction stalled every other
-- computation of the node for up to two seconds. Such a row's body is empty (not NULL: the
-- message is still pending); the runtime reassembles and opens it when it is needed again.
ALTER TABLE inbox ADD COLUMN body_in_chunks INTEGER NOT NULL DEFAULT 0;
