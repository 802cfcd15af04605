-- Outcome reporting (OutcomeReporter: at each maintenance tick, about once
-- a second, and after every deployment) asks for the finished deployments
-- not yet reported to the planner. Without an index that read scanned every
-- deployment ever made: at 10,000 applications some 10,000 rows and 4,000
-- pages, 30-45 ms of PostgreSQL per call (issue #23: it grew with the
-- number of applications, after a commit touching one of them and at idle).
-- The partial index holds only the few finished and unreported ones.
CREATE INDEX IF NOT EXISTS deployments_unreported ON deployments (seq) WHERE NOT reported AND state IN (3, 4, 5);
