-- The test service's own table, written in the same transaction as its
-- outbox rows (migration 001 is the shared common/outbox/schema/001_outbox.sql).
CREATE TABLE things (name text PRIMARY KEY);
