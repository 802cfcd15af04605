-- Deployments, their steps, the applied state, pins and drift records.
-- Records are stored as serialized ferry.v1 protos next to the columns that
-- are filtered on. Nothing is ever pruned: history has no retention cap.
CREATE TABLE IF NOT EXISTS deployments (
  id             text PRIMARY KEY,
  seq            bigserial UNIQUE,
  application_id text NOT NULL,
  environment_id text NOT NULL,
  plan_id        text NOT NULL DEFAULT '',
  state          integer NOT NULL,
  record         bytea NOT NULL,   -- ferry.v1.Deployment without steps
  spec           bytea NOT NULL,   -- ferry.v1.Plan executed (prepared manifests, target, policy)
  reported       boolean NOT NULL DEFAULT false  -- outcome reported to the planner
);
CREATE INDEX IF NOT EXISTS deployments_app ON deployments (application_id, environment_id, seq DESC);
CREATE INDEX IF NOT EXISTS deployments_unfinished ON deployments (seq) WHERE state IN (1, 2);

CREATE TABLE IF NOT EXISTS steps (
  deployment_id text NOT NULL REFERENCES deployments (id),
  sequence      bigint NOT NULL,
  record        bytea NOT NULL,    -- ferry.v1.DeploymentStep
  PRIMARY KEY (deployment_id, sequence)
);

-- What is live per (application, environment): the object as last applied.
CREATE TABLE IF NOT EXISTS applied_objects (
  application_id text NOT NULL,
  environment_id text NOT NULL,
  object_key     text NOT NULL,    -- group/kind/namespace/name
  object_ref     bytea NOT NULL,   -- ferry.v1.ObjectRef
  manifest       text NOT NULL,    -- full object JSON as applied
  source_path    text NOT NULL DEFAULT '',
  wave           integer NOT NULL DEFAULT 0,
  deployment_id  text NOT NULL,
  applied_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (application_id, environment_id, object_key)
);

-- Every (application, environment) the deployer manages, with the settings
-- drift detection needs.
CREATE TABLE IF NOT EXISTS managed_apps (
  application_id      text NOT NULL,
  environment_id      text NOT NULL,
  target              bytea NOT NULL,  -- ferry.v1.DeployTarget
  sync_policy         bytea NOT NULL,  -- ferry.v1.SyncPolicy
  live_deployment_id  text NOT NULL DEFAULT '',
  PRIMARY KEY (application_id, environment_id)
);

CREATE TABLE IF NOT EXISTS pins (
  application_id text NOT NULL,
  environment_id text NOT NULL,
  pinned         boolean NOT NULL,
  record         bytea NOT NULL,   -- ferry.v1.PinState
  PRIMARY KEY (application_id, environment_id)
);

CREATE TABLE IF NOT EXISTS drift_events (
  id             bigserial PRIMARY KEY,
  application_id text NOT NULL,
  environment_id text NOT NULL,
  object_key     text NOT NULL,
  drift          integer NOT NULL,
  message        text NOT NULL,
  detected_at    timestamptz NOT NULL DEFAULT now(),
  healed_by      text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS drift_events_app ON drift_events (application_id, environment_id, id DESC);

CREATE TABLE IF NOT EXISTS drift_settings (
  application_id text NOT NULL,
  environment_id text NOT NULL,
  record         bytea NOT NULL,   -- ferry.v1.DriftSettings
  PRIMARY KEY (application_id, environment_id)
);

-- Resume point of WatchApprovedPlans.
CREATE TABLE IF NOT EXISTS plan_cursor (
  id     integer PRIMARY KEY CHECK (id = 1),
  cursor text NOT NULL
);
