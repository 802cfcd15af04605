-- The audit log. Rows are only ever inserted (see 002_append_only.sql).
CREATE TABLE events (
  sequence        bigint PRIMARY KEY,
  event_time      timestamptz NOT NULL,
  service         text NOT NULL,
  actor           text NOT NULL,
  action          text NOT NULL,
  repository_id   text NOT NULL DEFAULT '',
  application_id  text NOT NULL DEFAULT '',
  environment_id  text NOT NULL DEFAULT '',
  plan_id         text NOT NULL DEFAULT '',
  deployment_id   text NOT NULL DEFAULT '',
  commit_sha      text NOT NULL DEFAULT '',
  details         jsonb NOT NULL DEFAULT '{}'::jsonb,
  idempotency_key text NOT NULL UNIQUE,
  prev_hash       text NOT NULL,
  hash            text NOT NULL
);
