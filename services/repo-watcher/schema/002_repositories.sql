-- Registered repositories. `spec` is the serialized ferry.v1.Repository; it
-- holds only references to secrets (file paths, environment variable names),
-- never the secrets themselves.
CREATE TABLE IF NOT EXISTS repositories (
  id          text PRIMARY KEY,
  url         text NOT NULL,
  spec        bytea NOT NULL,
  create_time timestamptz NOT NULL DEFAULT now(),
  update_time timestamptz NOT NULL DEFAULT now()
);

-- Polling status of each repository.
CREATE TABLE IF NOT EXISTS repository_status (
  repository_id        text PRIMARY KEY REFERENCES repositories(id) ON DELETE CASCADE,
  last_check_time      timestamptz,
  last_fetch_time      timestamptz,
  last_error           text NOT NULL DEFAULT '',
  last_error_time      timestamptz,
  consecutive_failures integer NOT NULL DEFAULT 0,
  next_check_time      timestamptz
);

-- Current tip (as mirrored) and last accepted commit of each tracked ref.
CREATE TABLE IF NOT EXISTS ref_states (
  repository_id text NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
  ref           text NOT NULL,
  sha           text NOT NULL,
  accepted_sha  text NOT NULL DEFAULT '',
  update_time   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository_id, ref)
);

-- Every ref movement seen, in detection order. `cursor` is the position in
-- the WatchRevisions stream; inserts are serialised by a transaction-level
-- advisory lock so that cursors become visible in increasing order.
-- Rows outlive their repository (history).
CREATE TABLE IF NOT EXISTS revisions (
  cursor        bigserial PRIMARY KEY,
  repository_id text NOT NULL,
  ref           text NOT NULL,
  sha           text NOT NULL,
  rejected      boolean NOT NULL,
  detect_time   timestamptz NOT NULL DEFAULT now(),
  revision      bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS revisions_by_repository ON revisions (repository_id, ref, cursor);
