-- Issue #23: autoanalyze ran at every one of autovacuum's 5 s visits during a
-- commit touching 10,000 applications: deployments 10 times (0.58 s of CPU),
-- the outbox 7 (0.53 s), steps 7 (0.21 s), applied objects 6 (0.22 s), out
-- of PostgreSQL's 46.7 s. Its default waits only for a tenth of a table
-- changed; a commit touching every application changes each of these tables
-- several times over. Their statements look rows up by key or through
-- partial indexes, so statistics one commit old serve them as well: analyzed
-- after changes of their own size, the outbox (read only through
-- outbox_unsent) after five times its size.
ALTER TABLE deployments SET (autovacuum_analyze_scale_factor = 1);
ALTER TABLE steps SET (autovacuum_analyze_scale_factor = 1);
ALTER TABLE applied_objects SET (autovacuum_analyze_scale_factor = 1);
ALTER TABLE managed_apps SET (autovacuum_analyze_scale_factor = 1);
ALTER TABLE outbox SET (autovacuum_analyze_scale_factor = 5);
