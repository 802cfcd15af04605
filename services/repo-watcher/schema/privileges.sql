-- The grants of the schema repo_watcher to ferry-repo-watcher's login role
-- (ferry_repo_watcher), applied by `ferry-repo-watcher --migrate-only` as the owner
-- (ferry_owner) after the migrations, every time (docs/operations.md,
-- "Database roles"). Rows only: no DDL, no TRUNCATE, nothing of any other
-- schema. New tables and sequences are covered by the next run.
GRANT USAGE ON SCHEMA repo_watcher TO ferry_repo_watcher;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA repo_watcher TO ferry_repo_watcher;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA repo_watcher TO ferry_repo_watcher;
-- Read-only: the service checks at start that the schema is migrated.
REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM ferry_repo_watcher;
