-- Appends now commit durably, one commit per group of callers (see
-- docs/audit.md), so the one-row table whose synchronous update used to
-- flush earlier asynchronous appends is no longer used.
DROP TABLE IF EXISTS wal_flush;
