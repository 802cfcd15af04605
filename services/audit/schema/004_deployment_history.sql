-- Time travel and DORA metrics (docs/history.md) read the deployment
-- outcome events only: two partial indexes, maintained by PostgreSQL in the
-- transaction of each append (nothing derived can lag or be half-applied),
-- holding only those events (a few in a hundred), so appends of other events
-- pay nothing for them.
-- * "what was live at T", per application and environment: the last
--   DEPLOYMENT_SUCCEEDED at or before T is one backward index probe per pair,
--   and the pairs themselves are found by skipping through the same index.
--   DORA's "next healthy deployment after a failure" is a forward probe.
CREATE INDEX events_succeeded_target_time ON events (application_id, environment_id, event_time, sequence)
  WHERE action = 'AUDIT_ACTION_DEPLOYMENT_SUCCEEDED';
-- * "what finished between T1 and T2", and DORA over a range: a range scan.
CREATE INDEX events_deployment_outcome_time ON events (event_time, sequence)
  WHERE action IN ('AUDIT_ACTION_DEPLOYMENT_SUCCEEDED', 'AUDIT_ACTION_DEPLOYMENT_FAILED',
                   'AUDIT_ACTION_DEPLOYMENT_ROLLED_BACK');
