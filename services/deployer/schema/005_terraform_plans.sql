-- Saved Terraform plans (docs/terraform.md) between planning and the
-- approved apply, shared by the deployer replicas of a group: the replica
-- that applies may not be the one whose dry run made the plan. A plan file
-- holds the run's variable values, secret ones included (Terraform writes
-- them there): only ferry_deployer reads this table, and the file is never
-- shown, sent or audited, only its digest.
CREATE TABLE IF NOT EXISTS terraform_plans (
  application_id text NOT NULL,
  environment_id text NOT NULL,
  digest text NOT NULL,
  plan_file bytea NOT NULL,
  create_time timestamptz NOT NULL DEFAULT now(),
  apply_time timestamptz,
  PRIMARY KEY (application_id, environment_id, digest)
);
