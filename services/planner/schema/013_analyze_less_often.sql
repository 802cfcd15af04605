-- Issue #23: autoanalyze ran at every one of autovacuum's 5 s visits during a
-- commit touching 10,000 applications: plans 10 times (1.1 s of CPU), the
-- outbox 6 times (0.31 s), the render cache 4 times, out of PostgreSQL's
-- 46.7 s. Its default waits only for a tenth of a table changed; a commit
-- touching every application changes each of these tables several times
-- over. Their statements look rows up by key or through partial indexes, so
-- statistics one commit old serve them as well: plans and the render cache
-- are analyzed after changes of their own size, the outbox (read only through
-- outbox_unsent) after five times its size.
ALTER TABLE plans SET (autovacuum_analyze_scale_factor = 1);
ALTER TABLE render_cache SET (autovacuum_analyze_scale_factor = 1);
ALTER TABLE outbox SET (autovacuum_analyze_scale_factor = 5);
