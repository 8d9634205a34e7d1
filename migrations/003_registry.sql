-- The model registry, retrain runs, operator commands and the audit log.

CREATE TABLE model_versions (
    model          text NOT NULL,
    version        text NOT NULL,
    status         text NOT NULL CHECK (status IN
                       ('draft', 'candidate', 'champion', 'retired', 'rejected', 'expired')),
    kind           text NOT NULL,          -- lightgbm | linear | logistic | external
    artifact_dir   text,                   -- NULL for a version trained outside Outcome Loop
    files          jsonb NOT NULL DEFAULT '{}',   -- file name -> sha256, checked on load
    card           jsonb NOT NULL DEFAULT '{}',   -- the model card
    parent_version text,
    run_id         bigint,
    created_at     timestamptz NOT NULL DEFAULT now(),
    decided_at     timestamptz,
    decided_by     text,
    PRIMARY KEY (model, version)
);
CREATE INDEX model_versions_status ON model_versions (model, status);

-- The current target of each alias (champion, challenger); history below.
CREATE TABLE model_aliases (
    model   text NOT NULL,
    alias   text NOT NULL,
    version text NOT NULL,
    set_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
);

CREATE TABLE alias_history (
    id               bigserial PRIMARY KEY,
    model            text NOT NULL,
    alias            text NOT NULL,
    version          text NOT NULL,
    previous_version text,
    set_by           text NOT NULL,
    reason           text NOT NULL DEFAULT '',
    command_id       uuid,
    set_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alias_history_model ON alias_history (model, alias, id DESC);

CREATE TABLE retrain_runs (
    id                bigserial PRIMARY KEY,
    model             text NOT NULL,
    trigger           text NOT NULL,        -- quality_alert | drift | schedule | outcome_count | command
    trigger_detail    jsonb NOT NULL DEFAULT '{}',
    status            text NOT NULL CHECK (status IN ('running', 'succeeded', 'gated', 'failed')),
    candidate_version text,
    dataset           jsonb NOT NULL DEFAULT '{}',
    gate_report       jsonb NOT NULL DEFAULT '[]',
    durations         jsonb NOT NULL DEFAULT '{}',  -- seconds per stage
    error             text,
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz
);
CREATE INDEX retrain_runs_model ON retrain_runs (model, started_at DESC);
-- At most one run per model at a time, whichever worker starts it.
CREATE UNIQUE INDEX retrain_runs_one_running ON retrain_runs (model) WHERE status = 'running';

CREATE TABLE model_controls (
    model                    text PRIMARY KEY,
    paused                   boolean NOT NULL DEFAULT false,
    paused_by                text,
    paused_reason            text,
    last_auto_retrain_at     timestamptz,
    outcomes_seen_at_retrain bigint NOT NULL DEFAULT 0,
    updated_at               timestamptz NOT NULL DEFAULT now()
);

-- Every command received, keyed by its id: a replay finds its row and does nothing twice.
CREATE TABLE commands (
    command_id  uuid PRIMARY KEY,
    command     text NOT NULL,
    model       text NOT NULL,
    issued_by   text NOT NULL,
    reason      text NOT NULL DEFAULT '',
    payload     jsonb NOT NULL,
    status      text NOT NULL CHECK (status IN ('accepted', 'done', 'refused', 'failed')),
    result      jsonb NOT NULL DEFAULT '{}',
    received_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

CREATE TABLE audit_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,          -- an operator, or "outcomeloop" for automatic actions
    action  text NOT NULL,
    model   text,
    version text,
    detail  jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_model ON audit_log (model, at DESC);
