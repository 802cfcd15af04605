-- Issue #23: autovacuum's ANALYZE of the deployer's tables took about 3.6 s
-- of CPU during one commit touching 10,000 applications, much of it sorting
-- samples of the serialized records, which no query filters, joins or
-- groups on (they are read by key). Without statistics for them, ANALYZE
-- samples only the columns queries use.
ALTER TABLE deployments ALTER COLUMN record SET STATISTICS 0, ALTER COLUMN spec SET STATISTICS 0;
ALTER TABLE steps ALTER COLUMN record SET STATISTICS 0;
ALTER TABLE applied_objects
  ALTER COLUMN object_ref SET STATISTICS 0,
  ALTER COLUMN manifest SET STATISTICS 0,
  ALTER COLUMN source_path SET STATISTICS 0;
ALTER TABLE managed_apps ALTER COLUMN target SET STATISTICS 0, ALTER COLUMN sync_policy SET STATISTICS 0;
ALTER TABLE outbox
  ALTER COLUMN idempotency_key SET STATISTICS 0,
  ALTER COLUMN event SET STATISTICS 0,
  ALTER COLUMN last_error SET STATISTICS 0;
