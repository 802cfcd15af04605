-- Separation of duties (#16). Each person's approval of a plan, at most one
-- per approver (Actor.id): an environment whose access policy requires N
-- approvals approves the plan at the N-th distinct one. The plan's body
-- carries the same list for display (Plan.approvals).
CREATE TABLE IF NOT EXISTS plan_approvals (
  plan_id     text NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
  approver    text NOT NULL,            -- ferry.v1.Actor.id
  seq         bigserial NOT NULL,       -- recording order
  decision    bytea NOT NULL,           -- ferry.v1.PlanDecision
  create_time timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (plan_id, approver)
);

-- The author of each commit the planner consumed from the repo-watcher's
-- revision stream, so that a plan of that commit made later (an explicit
-- revision, a refresh, a promotion, a rollback) still knows whom
-- distinct_from_author keeps from approving it.
CREATE TABLE IF NOT EXISTS commit_authors (
  repository_id text NOT NULL,
  sha           text NOT NULL,
  name          text NOT NULL DEFAULT '',
  email         text NOT NULL DEFAULT '',
  PRIMARY KEY (repository_id, sha)
);
