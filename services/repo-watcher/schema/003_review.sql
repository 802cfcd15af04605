-- Review events (#20): CI check results, pull and merge requests, and the
-- event log WatchReviewEvents streams.

-- The latest result of each (repository, commit, check name). `check_result`
-- is the serialized ferry.v1.CommitCheck (report_time set from the column).
CREATE TABLE IF NOT EXISTS commit_checks (
  repository_id text NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
  sha           text NOT NULL,
  name          text NOT NULL,
  state         smallint NOT NULL,
  check_result  bytea NOT NULL,
  report_time   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository_id, sha, name)
);

-- Pull requests (GitHub, Gitea) and merge requests (GitLab) learned from
-- webhooks. `pull_request` is the serialized ferry.v1.PullRequest.
CREATE TABLE IF NOT EXISTS pull_requests (
  repository_id text NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
  number        bigint NOT NULL,
  state         smallint NOT NULL,
  pull_request  bytea NOT NULL,
  update_time   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository_id, number)
);
CREATE INDEX IF NOT EXISTS pull_requests_by_state ON pull_requests (state, repository_id, number);

-- Every check result and pull-request change, in commit order: `cursor` is
-- the position in the WatchReviewEvents stream (inserts serialised by a
-- transaction-level advisory lock, as for revisions). `event` is the
-- serialized ferry.v1.WatchReviewEventsResponse without its cursor. Rows
-- outlive their repository (history).
CREATE TABLE IF NOT EXISTS review_events (
  cursor        bigserial PRIMARY KEY,
  repository_id text NOT NULL,
  event         bytea NOT NULL,
  record_time   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS review_events_by_repository ON review_events (repository_id, cursor);
