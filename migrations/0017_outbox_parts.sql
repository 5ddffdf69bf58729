-- An outbox message larger than one SQLite value may be (SQLITE_MAX_LENGTH, 1e9 bytes: a
-- two-party PSI of 2^24 items sends a matrix of 1.4 GB) is stored in parts: its outbox row's
-- envelope is empty, `in_parts` is set, and its envelope is the concatenation of its parts here,
-- by `idx`. The trigger deletes a row's parts with it, whichever statement deletes it.
ALTER TABLE outbox ADD COLUMN in_parts INTEGER NOT NULL DEFAULT 0;
CREATE TABLE outbox_parts (
    outbox INTEGER NOT NULL,   -- outbox.id
    idx    INTEGER NOT NULL,
    data   BLOB NOT NULL,
    PRIMARY KEY (outbox, idx)
);
CREATE TRIGGER outbox_parts_deleted AFTER DELETE ON outbox WHEN OLD.in_parts BEGIN
    DELETE FROM outbox_parts WHERE outbox = OLD.id;
END;
