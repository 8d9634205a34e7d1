-- Raw events as received (idempotent on event_id) and the matured examples built from them.
-- PostgreSQL is the source of truth for pending state: nothing lives only in the worker.

CREATE TABLE predictions (
    prediction_id   text PRIMARY KEY,
    event_id        uuid NOT NULL UNIQUE,
    model           text NOT NULL,
    model_version   text NOT NULL,
    entity_id       text,
    features        jsonb NOT NULL,
    prediction      double precision NOT NULL,
    predicted_class text,
    predicted_at    timestamptz NOT NULL,
    horizon_ends_at timestamptz NOT NULL,
    -- NULL while pending; how it matured otherwise
    resolution      text CHECK (resolution IN ('outcome', 'feedback', 'no_outcome', 'dropped')),
    matured_at      timestamptz,
    ingested_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX predictions_pending_horizon ON predictions (horizon_ends_at) WHERE matured_at IS NULL;
CREATE INDEX predictions_entity ON predictions (entity_id, predicted_at DESC) WHERE entity_id IS NOT NULL;
CREATE INDEX predictions_model_time ON predictions (model, predicted_at);

CREATE TABLE outcomes (
    event_id        uuid PRIMARY KEY,
    prediction_id   text,           -- as sent by the producer
    entity_id       text,
    model           text,
    outcome_kind    text NOT NULL,
    value           double precision NOT NULL,
    observed_at     timestamptz NOT NULL,
    attributed_to   text,           -- the prediction this outcome labels, once known
    rejected_reason text,           -- set when the outcome proves impossible (dead-lettered)
    ingested_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (prediction_id IS NOT NULL OR entity_id IS NOT NULL)
);
CREATE INDEX outcomes_attributed ON outcomes (attributed_to) WHERE attributed_to IS NOT NULL;
CREATE INDEX outcomes_prediction ON outcomes (prediction_id) WHERE prediction_id IS NOT NULL;
CREATE INDEX outcomes_entity_time ON outcomes (entity_id, observed_at) WHERE prediction_id IS NULL;

CREATE TABLE feedback (
    event_id      uuid PRIMARY KEY,
    prediction_id text NOT NULL,
    label         double precision NOT NULL,
    source        text NOT NULL,
    given_at      timestamptz NOT NULL,
    ingested_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feedback_prediction ON feedback (prediction_id);

-- One row per matured prediction that has a label: what monitoring and training read.
CREATE TABLE labeled_examples (
    prediction_id   text PRIMARY KEY REFERENCES predictions (prediction_id),
    model           text NOT NULL,
    model_version   text NOT NULL,
    entity_id       text,
    features        jsonb NOT NULL,     -- as of prediction time
    prediction      double precision NOT NULL,
    predicted_class text,
    label           double precision NOT NULL,
    label_source    text NOT NULL CHECK (label_source IN ('outcome', 'feedback', 'no_outcome')),
    label_event_id  uuid,               -- the outcome or feedback event that gave the label
    predicted_at    timestamptz NOT NULL,
    labeled_at      timestamptz,        -- when the outcome was observed or feedback given
    matured_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX labeled_examples_model_matured ON labeled_examples (model, model_version, matured_at);
CREATE INDEX labeled_examples_model_predicted ON labeled_examples (model, predicted_at);

-- Everything that could not be processed, with its raw bytes and why.
CREATE TABLE dead_letters (
    id               bigserial PRIMARY KEY,
    dedupe_key       text NOT NULL UNIQUE,
    source_topic     text NOT NULL,
    source_partition integer,
    source_offset    bigint,
    error_type       text NOT NULL,
    reason           text NOT NULL,
    payload          bytea NOT NULL,
    message_key      bytea,
    dead_lettered_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_time ON dead_letters (dead_lettered_at);
