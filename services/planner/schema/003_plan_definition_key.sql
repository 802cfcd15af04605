-- Automatic plans are made once per (application, environment, commit,
-- definition): the key hashes the application and environment definitions
-- the plan was made from, so a changed definition at the same commit plans
-- again while a replayed revision does not.
ALTER TABLE plans ADD COLUMN IF NOT EXISTS definition_key text NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS plans_commit ON plans (application_id, environment_id, target_sha);
