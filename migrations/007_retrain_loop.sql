-- The retrain controller's state per model: what it is waiting for and why, so a restart
-- (or another worker taking over as leader) carries on where the last one stopped.
ALTER TABLE model_controls
    ADD COLUMN loop_state        text NOT NULL DEFAULT 'healthy',
    ADD COLUMN loop_version      text,          -- the version being replaced
    ADD COLUMN loop_trigger      text,          -- what opened this degradation
    ADD COLUMN loop_detail       jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN change_at         timestamptz,   -- when the change began, in prediction time
    ADD COLUMN attempts          integer NOT NULL DEFAULT 0,
    ADD COLUMN last_attempt_rows integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at   timestamptz,
    ADD COLUMN loop_reason       text NOT NULL DEFAULT '',
    ADD COLUMN loop_since        timestamptz NOT NULL DEFAULT now();
