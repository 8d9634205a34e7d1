-- Checkpoints of the online challengers, so a restart or a new leader resumes them.
-- The state is a pickle of River objects, written and read only by the worker; its
-- HMAC (keyed by the control key) is checked before it is ever unpickled.
CREATE TABLE challenger_checkpoints (
    model       text NOT NULL,
    challenger  text NOT NULL,
    state       bytea NOT NULL,
    digest      text NOT NULL,
    seq         bigint NOT NULL,     -- matured_seq of the last example it learned from
    learned     bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, challenger)
);
