-- Recovery attempts of an unfinished deployment: how many attempts in a row
-- ended without completing a step, and the completed steps counted when the
-- last one began (-1: it was stopped deliberately). A deployment that takes
-- its deployer down every time is quarantined after --max-recovery-attempts.
ALTER TABLE deployments ADD COLUMN IF NOT EXISTS attempts_without_progress integer NOT NULL DEFAULT 0;
ALTER TABLE deployments ADD COLUMN IF NOT EXISTS progress_mark bigint NOT NULL DEFAULT 0;
