-- The federatedsecure API's network uuid of a computation started by `compute`: the k-th
-- compute with one network uuid at a node pairs with the k-th at the others.
ALTER TABLE computations ADD COLUMN network TEXT;
CREATE INDEX computations_by_network ON computations (network) WHERE network IS NOT NULL;
