-- The privacy budget's ledger: one charge per computation and API client, written in the
-- transaction that starts the computation at this node, so that a crash keeps both or neither
-- and a retried submission or a restart never charges twice (the primary key). Never pruned
-- with the computations: a charge counts for the budget's whole period, and the rows are small.
-- Costs as the computation's `dp` declares them (0 where it names none); `charged_at` in ms.
CREATE TABLE budget_charges (
    computation TEXT NOT NULL,
    client      TEXT NOT NULL,
    epsilon     REAL NOT NULL,
    delta       REAL NOT NULL,
    rho         REAL NOT NULL,
    charged_at  INTEGER NOT NULL,
    PRIMARY KEY (computation, client)
) WITHOUT ROWID;
-- What was spent in a period: the charges since its start.
CREATE INDEX budget_charges_by_time ON budget_charges (charged_at);
