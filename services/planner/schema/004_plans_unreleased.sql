-- Plans still held (pending or approved, not yet released). Every finished
-- deployment re-evaluates them; without this index that meant reading every
-- open plan, released or not, once per finished deployment.
CREATE INDEX IF NOT EXISTS plans_unreleased ON plans (seq) WHERE state IN (1, 2) AND release_seq IS NULL;
