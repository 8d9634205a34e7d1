-- When a promotion or rollback last re-armed the model's loop: the cooldown counts from
-- automatic runs after it only, so a change to the new version is dealt with at once.
ALTER TABLE model_controls ADD COLUMN rearmed_at timestamptz;
-- After a promotion on a few post-change rows: the row count at which a refresh is due.
ALTER TABLE model_controls ADD COLUMN refresh_rows integer;
