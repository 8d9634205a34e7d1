-- How many predictions each model has waiting, kept as they change rather than counted.
-- The lag report (every lag_interval_seconds), /status and the dashboard counted every row
-- of pending_predictions each time, and with long horizons (a purchase within 180 days)
-- that table holds most of the predictions ever made: a scan of millions of rows every ten
-- seconds. Only maturation changes these counts (INSERT_PREDICTIONS adds rows outside the
-- maturation lock, and maturation counts them in, under it: no two batches ever wait on
-- the same counter row).
CREATE TABLE pending_counts (
    model text PRIMARY KEY,
    n     bigint NOT NULL
);

-- The oldest pending prediction of a model, read from an index instead of a scan.
CREATE INDEX pending_predictions_model_time ON pending_predictions (model, predicted_at);

-- Writers wait while the index is built and the counts are taken, so none is missed or
-- counted twice. (A worker of the older version still ingesting may meet this lock in a
-- cycle with its own batches; PostgreSQL then fails one side: a batch is retried by its
-- worker, `migrate` can simply be run again. Rows such a worker moves after this
-- migration are caught by the leader's periodic recount, worker.pending_recount_seconds.)
LOCK TABLE pending_predictions IN SHARE MODE;
INSERT INTO pending_counts (model, n)
SELECT model, count(*) FROM pending_predictions GROUP BY model;
