-- Migration 001 of the schema `access`, which every service migrates at
-- start (server::Bootstrap): the planner creates and revokes API tokens,
-- every service verifies them (common/auth/postgres_token_store.cc).
--
-- API tokens. Only the keyed hash of a token is kept,
-- HMAC-SHA256(--token-key-file, "ferry_<id>_<secret>"), never the secret.
CREATE TABLE IF NOT EXISTS tokens (
  seq          bigserial NOT NULL UNIQUE,         -- creation order, for paging
  id           text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{12}$'),
  token_hash   bytea NOT NULL CHECK (length(token_hash) = 32),
  subject      text NOT NULL,
  groups       text[] NOT NULL DEFAULT '{}',
  description  text NOT NULL DEFAULT '',
  created_by   jsonb NOT NULL,                    -- ferry.v1.Actor in proto3 JSON
  created_at   timestamptz NOT NULL,
  expires_at   timestamptz,                       -- NULL: never expires
  revoked_at   timestamptz,                       -- NULL: not revoked
  last_used_at timestamptz                        -- NULL: never used; written at most once a minute
);
CREATE INDEX IF NOT EXISTS tokens_subject ON tokens (subject, seq);
