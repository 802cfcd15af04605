-- Issue #23: every check of a repository rewrites its status row
-- (last_check_time), so at a 60 s poll interval the table changes by its
-- own size each minute, and autovacuum's default (ANALYZE after 10% of the
-- rows changed) analyzed it every 6 s: 7 times a minute at 10,000
-- repositories, each reading the whole table, for statistics no query
-- needs (the table is read by repository id only). Analyzed after changes
-- of five times its size: about every 5 minutes at any number of
-- repositories polled each minute.
ALTER TABLE repository_status SET (autovacuum_analyze_scale_factor = 5);
