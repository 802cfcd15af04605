-- The audit log: hash-chained events, the chain head, signed checkpoints,
-- and the restricted role the service writes through. See docs/audit.md.

-- One row per ferry.v1.Event. Rows are only ever inserted (trigger below).
-- Enum values are stored by name (e.g. AUDIT_ACTION_PLAN_CREATED); absent
-- strings are ''. `details` is NULL when the event carries no details.
CREATE TABLE events (
  sequence           bigint PRIMARY KEY CHECK (sequence > 0),
  event_time         timestamptz NOT NULL,
  append_time        timestamptz NOT NULL,
  service            text NOT NULL,
  actor_id           text NOT NULL,
  actor_kind         text NOT NULL DEFAULT '',
  actor_display_name text NOT NULL DEFAULT '',
  action             text NOT NULL,
  repository_id      text NOT NULL DEFAULT '',
  application_id     text NOT NULL DEFAULT '',
  environment_id     text NOT NULL DEFAULT '',
  plan_id            text NOT NULL DEFAULT '',
  deployment_id      text NOT NULL DEFAULT '',
  commit_sha         text NOT NULL DEFAULT '',
  ref                text NOT NULL DEFAULT '',
  message            text NOT NULL DEFAULT '',
  details            jsonb,
  idempotency_key    text NOT NULL,
  prev_hash          text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
  hash               text NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
  CONSTRAINT events_idempotency_key UNIQUE (service, idempotency_key)
);

-- Filtered queries return results in sequence order; each subject filter has
-- an index ending in sequence so "the last N events of X" is an index scan.
CREATE INDEX events_application_seq ON events (application_id, sequence);
CREATE INDEX events_repository_seq ON events (repository_id, sequence);
CREATE INDEX events_environment_seq ON events (environment_id, sequence);
CREATE INDEX events_deployment_seq ON events (deployment_id, sequence);
CREATE INDEX events_plan_seq ON events (plan_id, sequence);
CREATE INDEX events_commit_seq ON events (commit_sha, sequence);
CREATE INDEX events_action_seq ON events (action, sequence);
CREATE INDEX events_actor_time ON events (actor_id, event_time);
CREATE INDEX events_time ON events (event_time);

-- The head of the chain: exactly one row. Appends move it in the same
-- statement that inserts the events, conditional on its old value, so that
-- every writer (and every replica) extends the same single chain.
CREATE TABLE chain_head (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  sequence  bigint NOT NULL,
  hash      text NOT NULL
);
INSERT INTO chain_head (singleton, sequence, hash) VALUES (true, 0, repeat('0', 64));

-- A one-row table the service updates in a synchronous commit to make every
-- earlier (asynchronous) append commit durable before it acknowledges it.
CREATE TABLE wal_flush (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  n         bigint NOT NULL
);
INSERT INTO wal_flush (singleton, n) VALUES (true, 0);

-- Signed (sequence, head hash) pairs. Only ever inserted.
CREATE TABLE checkpoints (
  sequence      bigint PRIMARY KEY,
  head_hash     text NOT NULL,
  signature     bytea NOT NULL,
  public_key_id text NOT NULL,
  algorithm     text NOT NULL,
  create_time   timestamptz NOT NULL
);

-- Append-only, for every role including the owner: UPDATE, DELETE and
-- TRUNCATE raise. (A superuser can still disable the trigger; VerifyChain
-- and the signed checkpoints catch what they then change.)
CREATE FUNCTION refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit log is append-only: % on %.% refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME;
END
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION refuse_audit_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_change();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints
  FOR EACH ROW EXECUTE FUNCTION refuse_audit_change();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_change();

-- The role the service writes through (SET ROLE on its writer connection).
-- Roles are cluster-wide, so it is created only if missing; two databases
-- migrating at once may race, and the loser finds it created.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ferry_audit_writer') THEN
    BEGIN
      CREATE ROLE ferry_audit_writer NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  END IF;
  -- A non-superuser owner must be a member to SET ROLE to it.
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    EXECUTE format('GRANT ferry_audit_writer TO %I', current_user);
  END IF;
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO ferry_audit_writer', current_schema());
END
$$;
REVOKE ALL ON events, chain_head, checkpoints, wal_flush FROM ferry_audit_writer;
GRANT SELECT, INSERT ON events TO ferry_audit_writer;
GRANT SELECT, INSERT ON checkpoints TO ferry_audit_writer;
GRANT SELECT, UPDATE ON chain_head TO ferry_audit_writer;
GRANT SELECT, UPDATE ON wal_flush TO ferry_audit_writer;
