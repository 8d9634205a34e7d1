-- The lag report (every report interval) and the dashboard read the last window of
-- maturations and predictions by model and time. Nothing read labeled_examples by
-- (model, model_version, matured_at); without a leading model condition that index only
-- served through PostgreSQL 18's skip scan, and on earlier versions each report scanned
-- the whole table. Queries now name their models; this index leads with them.
DROP INDEX IF EXISTS labeled_examples_model_matured;
CREATE INDEX labeled_examples_model_matured_at ON labeled_examples (model, matured_at);
