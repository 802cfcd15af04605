-- Replicas (issue #18). Each environment is owned by one deployer group
-- and, within it, by the replica holding its lease: only the holder applies,
-- recovers and checks drift there. The fencing token grows by one at every
-- acquisition; writes of deployment state check it in their transaction, so
-- a replica that lost the lease (paused, partitioned) records nothing after
-- the takeover. Expiry is by the database's clock (now()).
CREATE TABLE IF NOT EXISTS environment_leases (
  environment_id text PRIMARY KEY,
  deployer_group text NOT NULL DEFAULT 'default',
  holder text NOT NULL DEFAULT '',
  token bigint NOT NULL DEFAULT 0,
  expire_time timestamptz NOT NULL DEFAULT '-infinity',
  acquire_time timestamptz
);
CREATE INDEX IF NOT EXISTS environment_leases_group ON environment_leases (deployer_group, expire_time);

-- Environments deployed before leases existed belong to the default group,
-- free to take.
INSERT INTO environment_leases (environment_id)
  SELECT environment_id FROM managed_apps
  UNION SELECT environment_id FROM deployments WHERE state IN (1, 2)
  ON CONFLICT DO NOTHING;

-- The position in the planner's release stream, per deployer group (each
-- group skips the others' plans). The single cursor becomes the default
-- group's.
CREATE TABLE IF NOT EXISTS plan_cursors (
  deployer_group text PRIMARY KEY,
  cursor text NOT NULL
);
INSERT INTO plan_cursors (deployer_group, cursor)
  SELECT 'default', cursor FROM plan_cursor WHERE id = 1
  ON CONFLICT DO NOTHING;
