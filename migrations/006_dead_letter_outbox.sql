-- Dead letters are written with the batch that found them and published to the
-- dead-letter topic after commit; published_at records that publishing finished, so a
-- crash in between is caught up later instead of losing the Kafka copy.
ALTER TABLE dead_letters ADD COLUMN published_at timestamptz;
UPDATE dead_letters SET published_at = dead_lettered_at;
CREATE INDEX dead_letters_unpublished ON dead_letters (dead_lettered_at) WHERE published_at IS NULL;
