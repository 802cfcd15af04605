-- Issue #23: autoanalyze ran 5 times during a commit touching 10,000
-- applications, each reading a 30,000-row sample of events: 1.56 s of CPU out
-- of PostgreSQL's 46.7 s (deployed_intervals 8 times, 0.11 s). Its default
-- waits only for a tenth of the table changed, and every deployment appends
-- five events or more. The log is append-only: a new row's columns fall
-- past the histograms' ends, which the planner reads from the indexes
-- themselves, so events and deployed_intervals are analyzed after they grew
-- by their own size.
ALTER TABLE events SET (autovacuum_analyze_scale_factor = 1);
ALTER TABLE deployed_intervals SET (autovacuum_analyze_scale_factor = 1);
