-- The grants of the schema planner to ferry-planner's login role
-- (ferry_planner), applied by `ferry-planner --migrate-only` as the owner
-- (ferry_owner) after the migrations, every time (docs/operations.md,
-- "Database roles"). Rows only: no DDL, no TRUNCATE, nothing of any other
-- schema. New tables and sequences are covered by the next run.
GRANT USAGE ON SCHEMA planner TO ferry_planner;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA planner TO ferry_planner;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA planner TO ferry_planner;
-- Read-only: the service checks at start that the schema is migrated.
REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM ferry_planner;
-- pull_request_previews (007, docs/previews.md) is read and written by the
-- planner alone: covered by the grant on ALL TABLES above, nothing more.
