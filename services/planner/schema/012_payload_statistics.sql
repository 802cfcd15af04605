-- Issue #23: autovacuum's ANALYZE of plans, the outbox and the render cache
-- took about 2.3 s of CPU during one commit touching 10,000 applications,
-- much of it on samples of the serialized bodies, which no query filters,
-- joins or groups on (they are read by key). Without statistics for them,
-- ANALYZE samples only the columns queries use.
ALTER TABLE plans ALTER COLUMN body SET STATISTICS 0;
ALTER TABLE render_cache ALTER COLUMN manifests SET STATISTICS 0;
ALTER TABLE outbox
  ALTER COLUMN idempotency_key SET STATISTICS 0,
  ALTER COLUMN event SET STATISTICS 0,
  ALTER COLUMN last_error SET STATISTICS 0;
