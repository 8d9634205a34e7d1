-- Predictions become insert-only. Marking each matured prediction rewrote its whole row
-- (features included) and, because the pending index's predicate named matured_at, added
-- an entry to each of its six indexes: 20 of a drain batch's 100 ms in PostgreSQL. The
-- state that changes now lives in two narrow tables, and how a prediction matured is read
-- from where its result is kept:
--   pending      a row in pending_predictions (and nowhere else)
--   labeled      a row in labeled_examples (label_source: outcome, feedback, no_outcome)
--   dropped      a row in dropped_predictions (horizon passed, no label, policy "drop")
-- A new prediction is added to pending_predictions as it is stored; from then on
-- maturation (one statement, under the maturation lock) is the only writer of all three.

CREATE TABLE pending_predictions (
    prediction_id   text PRIMARY KEY,
    model           text NOT NULL,
    predicted_at    timestamptz NOT NULL,
    horizon_ends_at timestamptz NOT NULL
);
CREATE INDEX pending_predictions_horizon ON pending_predictions (horizon_ends_at);

CREATE TABLE dropped_predictions (
    prediction_id text PRIMARY KEY,
    model         text NOT NULL,
    predicted_at  timestamptz NOT NULL,
    dropped_at    timestamptz NOT NULL
);
-- Join completeness counts a model's dropped predictions over a recent span.
CREATE INDEX dropped_predictions_model ON dropped_predictions (model, predicted_at);

INSERT INTO pending_predictions (prediction_id, model, predicted_at, horizon_ends_at)
SELECT prediction_id, model, predicted_at, horizon_ends_at
FROM predictions WHERE matured_at IS NULL;

INSERT INTO dropped_predictions (prediction_id, model, predicted_at, dropped_at)
SELECT prediction_id, model, predicted_at, matured_at
FROM predictions WHERE resolution = 'dropped';

DROP INDEX predictions_pending_horizon;
ALTER TABLE predictions DROP COLUMN resolution, DROP COLUMN matured_at;

-- Every prediction (all its columns) with how and when it matured, for reports, as the
-- table read before: resolution and matured_at are NULL while it is pending. Each join is
-- on a primary key.
CREATE VIEW prediction_status AS
SELECT p.*,
       CASE WHEN q.prediction_id IS NOT NULL THEN NULL
            WHEN le.prediction_id IS NOT NULL THEN le.label_source
            WHEN d.prediction_id IS NOT NULL THEN 'dropped'
       END AS resolution,
       CASE WHEN q.prediction_id IS NULL THEN coalesce(le.matured_at, d.dropped_at)
       END AS matured_at
FROM predictions p
LEFT JOIN pending_predictions q ON q.prediction_id = p.prediction_id
LEFT JOIN labeled_examples le ON le.prediction_id = p.prediction_id
LEFT JOIN dropped_predictions d ON d.prediction_id = p.prediction_id;
