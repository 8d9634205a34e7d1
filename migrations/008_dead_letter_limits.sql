-- A dead letter keeps at most a configured number of raw bytes; the original's size and
-- sha256 say what was cut. A row the broker refuses is marked and skipped, so one
-- unsendable letter never holds back the ones after it.
ALTER TABLE dead_letters
    ADD COLUMN original_bytes   bigint,
    ADD COLUMN payload_sha256   text,
    ADD COLUMN publish_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN publish_error    text;
