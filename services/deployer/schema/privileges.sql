-- The grants of the schema deployer to ferry-deployer's login role
-- (ferry_deployer), applied by `ferry-deployer --migrate-only` as the owner
-- (ferry_owner) after the migrations, every time (docs/operations.md,
-- "Database roles"). Rows only: no DDL, no TRUNCATE, nothing of any other
-- schema. New tables and sequences are covered by the next run.
GRANT USAGE ON SCHEMA deployer TO ferry_deployer;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA deployer TO ferry_deployer;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA deployer TO ferry_deployer;
-- Read-only: the service checks at start that the schema is migrated.
REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM ferry_deployer;
