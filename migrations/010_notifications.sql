-- Webhook notifications: one row per (event, webhook), so an event is delivered to each
-- receiver at most once however often it is published; retried with backoff until
-- delivered or out of attempts.
CREATE TABLE notifications (
    id              bigserial PRIMARY KEY,
    event_id        uuid NOT NULL,
    webhook         text NOT NULL,
    kind            text NOT NULL,
    model           text,
    body            jsonb NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, webhook)
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE delivered_at IS NULL;
