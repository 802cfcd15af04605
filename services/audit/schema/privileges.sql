-- The grants of the schema audit to ferry-audit's login role (ferry_audit),
-- applied by `ferry-audit --migrate-only` as the owner (ferry_owner) after
-- the migrations, every time (docs/operations.md, "Database roles").
-- ferry_audit appends through its membership of ferry_audit_writer (granted
-- by helm/ferry/files/db-roles.sql; its grants are in 001_events.sql):
-- SELECT and INSERT on events and checkpoints, SELECT and UPDATE on
-- chain_head. Nothing more: no UPDATE, DELETE or TRUNCATE of events or
-- checkpoints (the triggers refuse them too), and, not being the owner, no
-- DROP TRIGGER, ALTER or DROP. deployed_intervals (005) is read-only to both:
-- the owner's trigger maintains it on each append.
GRANT USAGE ON SCHEMA audit TO ferry_audit;
REVOKE ALL ON ALL TABLES IN SCHEMA audit FROM ferry_audit;
GRANT SELECT ON schema_migrations, events, checkpoints, chain_head, deployed_intervals TO ferry_audit;
