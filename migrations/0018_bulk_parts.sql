-- A machine's bulk (`fsc_simon::Machine::bulk`: an OT PSI's items, a third of a GB at 2^24),
-- left out of its state in `computations.machine` and written once, here, in parts of at most
-- a quarter of SQLite's length limit, by `idx`. The triggers delete a computation's bulk when
-- its state goes (it ends: the state is set to NULL) or its row does.
CREATE TABLE bulk_parts (
    computation TEXT NOT NULL,   -- computations.id
    idx         INTEGER NOT NULL,
    data        BLOB NOT NULL,
    PRIMARY KEY (computation, idx)
);
CREATE TRIGGER bulk_parts_ended AFTER UPDATE OF machine ON computations
    WHEN NEW.machine IS NULL AND OLD.machine IS NOT NULL BEGIN
    DELETE FROM bulk_parts WHERE computation = NEW.id;
END;
CREATE TRIGGER bulk_parts_deleted AFTER DELETE ON computations BEGIN
    DELETE FROM bulk_parts WHERE computation = OLD.id;
END;
