-- The grants of the schema notifier to ferry-notifier's login role
-- (ferry_notifier), applied by `ferry-notifier --migrate-only` as the owner
-- (ferry_owner) after the migrations, every time (docs/operations.md,
-- "Database roles"). Rows only: no DDL, no TRUNCATE, nothing of any other
-- schema. New tables and sequences are covered by the next run.
GRANT USAGE ON SCHEMA notifier TO ferry_notifier;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA notifier TO ferry_notifier;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA notifier TO ferry_notifier;
-- Read-only: the service checks at start that the schema is migrated.
REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM ferry_notifier;
