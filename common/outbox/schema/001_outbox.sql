-- Migration 001 of every service that records audit events through the
-- outbox (planner, deployer, repo-watcher): their CMakeLists embed this file
-- with ferry_migrations(... SHARED ${FERRY_OUTBOX_MIGRATION}). Databases
-- have it recorded as applied version 1; never edit what it creates, add a
-- migration to the services instead.
--
-- Transactional outbox for audit events. A row is written in the same
-- transaction as the state change it reports; the forwarder delivers it to
-- the audit service and marks it sent.
CREATE TABLE IF NOT EXISTS outbox (
  id              bigserial PRIMARY KEY,
  idempotency_key text NOT NULL UNIQUE,
  event           bytea NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  attempts        integer NOT NULL DEFAULT 0,
  last_error      text,
  sent_at         timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
