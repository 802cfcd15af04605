-- Applications, environments, plans, the render cache and stream cursors.
-- Resources are stored as their ferry.v1 protobuf bytes (`spec`) beside the
-- columns that queries filter or join on.

CREATE TABLE IF NOT EXISTS environments (
  id           text PRIMARY KEY,
  spec         bytea NOT NULL,          -- ferry.v1.Environment
  declared_by  text,                    -- declaration source key, NULL when made through the API
  create_time  timestamptz NOT NULL DEFAULT now(),
  update_time  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS applications (
  id            text PRIMARY KEY,
  repository_id text NOT NULL,
  ref           text NOT NULL,          -- full ref name
  spec          bytea NOT NULL,         -- ferry.v1.Application
  declared_by   text,
  input_paths   text[] NOT NULL DEFAULT '{}',  -- repository paths the last render read (beyond `path`)
  create_time   timestamptz NOT NULL DEFAULT now(),
  update_time   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS applications_repo_ref ON applications (repository_id, ref);

-- Which environments an application deploys to; RESTRICT makes deleting an
-- environment in use a FAILED_PRECONDITION.
CREATE TABLE IF NOT EXISTS application_environments (
  application_id text NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
  environment_id text NOT NULL REFERENCES environments (id) ON DELETE RESTRICT,
  PRIMARY KEY (application_id, environment_id)
);

-- ferry.yaml files registered with ApplyDeclarativeConfig.
CREATE TABLE IF NOT EXISTS declaration_sources (
  key           text PRIMARY KEY,       -- "<repository_id>:<ref>:<path>"
  repository_id text NOT NULL,
  ref           text NOT NULL,
  path          text NOT NULL,
  commit        text NOT NULL DEFAULT '',
  update_time   timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE IF NOT EXISTS plan_release_seq;

CREATE TABLE IF NOT EXISTS plans (
  seq            bigserial PRIMARY KEY,
  id             text NOT NULL UNIQUE,
  application_id text NOT NULL,
  environment_id text NOT NULL,
  state          integer NOT NULL,      -- ferry.v1.PlanState
  trigger        integer NOT NULL,      -- ferry.v1.PlanTrigger
  target_sha     text NOT NULL DEFAULT '',
  hold_reason    integer NOT NULL DEFAULT 0,
  deployment_id  text NOT NULL DEFAULT '',
  -- Position in the WatchApprovedPlans stream; assigned once, when the plan is
  -- approved and no longer held.
  release_seq    bigint UNIQUE,
  body           bytea NOT NULL,        -- ferry.v1.Plan, FULL view
  create_time    timestamptz NOT NULL DEFAULT now(),
  update_time    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS plans_app_env ON plans (application_id, environment_id, seq DESC);
CREATE INDEX IF NOT EXISTS plans_open ON plans (state) WHERE state IN (1, 2, 4);
CREATE INDEX IF NOT EXISTS plans_released ON plans (release_seq) WHERE release_seq IS NOT NULL;

-- Rendered manifests by content hash of the inputs plus renderer version.
CREATE TABLE IF NOT EXISTS render_cache (
  key         text PRIMARY KEY,
  manifests   bytea NOT NULL,           -- ferry.v1.Plan holding only manifests
  create_time timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS cursors (
  name  text PRIMARY KEY,
  value text NOT NULL
);
