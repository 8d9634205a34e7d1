-- Monitoring: the order examples matured in (for tailing), quality snapshots, drift
-- statistics and episodes.

-- Assigned once, when an example first matures. Maturation holds an advisory lock until
-- commit, so sequence order is commit order and a reader tailing by seq never skips rows.
CREATE SEQUENCE labeled_examples_matured_seq;
ALTER TABLE labeled_examples
    ADD COLUMN matured_seq bigint NOT NULL DEFAULT nextval('labeled_examples_matured_seq');
ALTER SEQUENCE labeled_examples_matured_seq OWNED BY labeled_examples.matured_seq;
CREATE UNIQUE INDEX labeled_examples_seq ON labeled_examples (matured_seq);
CREATE INDEX labeled_examples_model_seq ON labeled_examples (model, model_version, matured_seq);

CREATE INDEX predictions_version_time ON predictions (model, model_version, predicted_at);

-- A time series, written at a cadence and when an alert rule is crossed.
CREATE TABLE quality_snapshots (
    id            bigserial PRIMARY KEY,
    model         text NOT NULL,
    model_version text NOT NULL,
    segment       text NOT NULL DEFAULT '',   -- '' for all traffic, else feature=value
    window_name   text NOT NULL,               -- last_500, 1h, 7d...
    metric        text NOT NULL,
    value         double precision,
    n             integer NOT NULL,
    reason        text NOT NULL CHECK (reason IN ('cadence', 'alert')),
    taken_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quality_snapshots_lookup
    ON quality_snapshots (model, model_version, metric, window_name, segment, taken_at DESC);

CREATE TABLE drift_stats (
    id            bigserial PRIMARY KEY,
    model         text NOT NULL,
    model_version text NOT NULL,
    feature       text NOT NULL,               -- a feature, __prediction__ or __error__
    method        text NOT NULL,
    statistic     double precision,
    p_value       double precision,
    threshold     double precision NOT NULL,
    drifted       boolean NOT NULL,
    episode_start boolean NOT NULL DEFAULT false,  -- this row raised a DriftDetected
    n_reference   integer NOT NULL,
    n_current     integer NOT NULL,
    window_start  timestamptz,
    window_end    timestamptz,
    note          text NOT NULL DEFAULT '',
    computed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX drift_stats_lookup ON drift_stats (model, model_version, feature, computed_at DESC);
CREATE INDEX drift_stats_episodes ON drift_stats (model, computed_at) WHERE episode_start;
