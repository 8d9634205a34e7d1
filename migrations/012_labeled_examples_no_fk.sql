-- labeled_examples rows are only ever made from a stored prediction (MATURE selects them
-- from predictions) and predictions are never deleted, so the foreign key proved nothing
-- the code does not; its per-row check cost every matured example an index lookup and a
-- row lock on its prediction, in the hottest statement of ingestion.
ALTER TABLE labeled_examples DROP CONSTRAINT IF EXISTS labeled_examples_prediction_id_fkey;
