-- Pull-request previews (#20, docs/previews.md): the blast radius of each
-- open pull or merge request at its head, kept up to date from the
-- repo-watcher's review events (cursor "review_events" in cursors) and
-- removed when the pull request closes or merges. comment_id (inside the
-- preview) is the id of Ferry's one comment on the Git host, edited in place.
CREATE TABLE IF NOT EXISTS pull_request_previews (
  repository_id text NOT NULL,
  number        bigint NOT NULL,
  head_sha      text NOT NULL,
  preview       bytea NOT NULL,        -- ferry.v1.PullRequestPreview
  update_time   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository_id, number)
);
