-- Rollbacks are marked in the alias history, so "the previous champion" is found by
-- replaying promotions and rollbacks rather than read off the latest row (which after a
-- rollback is the version rolled away from).
ALTER TABLE alias_history ADD COLUMN rollback boolean NOT NULL DEFAULT false;
