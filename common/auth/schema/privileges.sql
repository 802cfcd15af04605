-- The grants of the schema access (API tokens) to the services' login roles,
-- applied by each service's `--migrate-only` as the owner (ferry_owner)
-- after the migrations, every time (docs/operations.md, "Database roles").
-- Every service verifies tokens (SELECT) and records their use
-- (last_used_at); only the planner, which hosts ferry.v1.Access, creates
-- and revokes them.
GRANT USAGE ON SCHEMA access TO ferry_repo_watcher, ferry_planner, ferry_deployer, ferry_audit, ferry_notifier;
GRANT SELECT ON schema_migrations TO ferry_repo_watcher, ferry_planner, ferry_deployer, ferry_audit, ferry_notifier;
GRANT SELECT, UPDATE (last_used_at) ON tokens TO ferry_repo_watcher, ferry_deployer, ferry_audit, ferry_notifier;
GRANT SELECT, INSERT, UPDATE ON tokens TO ferry_planner;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA access TO ferry_planner;
