-- Issue #23: the outbox forwarder asks for the unsent rows (outbox_unsent,
-- a partial index) after every wake-up, and each sent row leaves a dead
-- entry there until VACUUM: during a commit touching 10,000 applications
-- the index filled with tens of thousands of them between autovacuum's
-- visits and each read walked them (5.8 ms a call at 10,000, 0.02 ms once
-- vacuumed). Vacuumed after every 1,000 changed rows, whatever the table's
-- size, and without cost-based pauses (scripts/pg-cluster has autovacuum
-- look every 5 s).
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
                        autovacuum_vacuum_cost_delay = 0);
