-- Computations belong to the API client that submitted them (NULL: a tombstone no client has
-- claimed yet). The input MAC is gone: no answer may depend on a stored input, so a retry with
-- the same definition is idempotent whatever its input.
ALTER TABLE computations ADD COLUMN client TEXT;
UPDATE computations SET client = 'local' WHERE microprotocol IS NOT NULL;
ALTER TABLE computations DROP COLUMN input_mac;
CREATE INDEX computations_by_client ON computations (client, created_at DESC, id DESC);
CREATE INDEX computations_by_client_status ON computations (client, status, created_at DESC, id DESC);
