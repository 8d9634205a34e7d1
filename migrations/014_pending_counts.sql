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

-- Writers wait while the counts are taken, so none is missed or counted twice.
LOCK TABLE pending_predictions IN SHARE MODE;
INSERT INTO pending_counts (model, n)
SELECT model, count(*) FROM pending_predictions GROUP BY model;
