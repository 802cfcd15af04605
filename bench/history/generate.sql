-- Fills audit.events with :events events of the real event shape, in one
-- INSERT ... SELECT over generate_series (bench/history/run). The history is
-- a year of deployments from 2025-01-01, one event every 31.536 s, in
-- cycles of ten events per deployment, the pairs (application, environment)
-- taken in turn (:apps applications x 4 environments):
--   0 REVISION_DETECTED (repo-watcher, with commit_time_unix 15 min earlier)
--   1 PLAN_CREATED, 2 PLAN_APPROVED (planner)
--   3 DEPLOYMENT_STARTED, 4-7 DEPLOYMENT_STEP (deployer)
--   8 DEPLOYMENT_SUCCEEDED, or DEPLOYMENT_FAILED for one deployment in 13
--   9 DRIFT_DETECTED, or after a failure the automatic rollback's
--     DEPLOYMENT_SUCCEEDED (kind AUTO_ROLLBACK, actor ferry)
-- Details are as the services write them. The hashes have the stored shape
-- (64 hex characters) but are not a chain: no time travel query reads them;
-- the chain head is moved to the last event so appends could go on.
INSERT INTO audit.events (sequence, event_time, append_time, service, actor_id, actor_kind, actor_display_name,
  action, repository_id, application_id, environment_id, plan_id, deployment_id, commit_sha, ref, message, details,
  idempotency_key, prev_hash, hash)
SELECT c.i, c.t, c.t + interval '3 milliseconds',
  CASE WHEN c.slot = 0 THEN 'repo-watcher' WHEN c.slot IN (1, 2) THEN 'planner' ELSE 'deployer' END,
  CASE WHEN c.slot IN (0, 1) OR (c.slot = 9) THEN 'ferry' ELSE 'user-' || (c.k % 50) END,
  CASE WHEN c.slot IN (0, 1) OR (c.slot = 9) THEN 'ACTOR_KIND_SYSTEM' ELSE 'ACTOR_KIND_USER' END,
  '',
  CASE c.slot WHEN 0 THEN 'AUDIT_ACTION_REVISION_DETECTED' WHEN 1 THEN 'AUDIT_ACTION_PLAN_CREATED'
    WHEN 2 THEN 'AUDIT_ACTION_PLAN_APPROVED' WHEN 3 THEN 'AUDIT_ACTION_DEPLOYMENT_STARTED'
    WHEN 8 THEN CASE WHEN c.failed THEN 'AUDIT_ACTION_DEPLOYMENT_FAILED' ELSE 'AUDIT_ACTION_DEPLOYMENT_SUCCEEDED' END
    WHEN 9 THEN CASE WHEN c.failed THEN 'AUDIT_ACTION_DEPLOYMENT_SUCCEEDED' ELSE 'AUDIT_ACTION_DRIFT_DETECTED' END
    ELSE 'AUDIT_ACTION_DEPLOYMENT_STEP' END,
  'repo-' || (c.app % 20),
  CASE WHEN c.slot = 0 THEN '' ELSE 'app-' || c.app END,
  CASE WHEN c.slot = 0 THEN '' ELSE c.env END,
  CASE WHEN c.slot BETWEEN 1 AND 8 THEN 'plan-' || c.k ELSE '' END,
  CASE WHEN c.slot BETWEEN 3 AND 8 THEN 'dep-' || c.k WHEN c.slot = 9 AND c.failed THEN 'dep-' || c.k || '-rb'
    ELSE '' END,
  CASE WHEN c.slot = 9 AND c.failed THEN c.prev_sha WHEN c.slot = 9 THEN '' ELSE c.sha END,
  'refs/heads/main',
  CASE c.slot WHEN 0 THEN 'new revision ' || c.sha || ' on refs/heads/main'
    WHEN 8 THEN CASE WHEN c.failed THEN 'deployment failed: health check timed out'
                     ELSE 'DEPLOYMENT_KIND_ROLLOUT of ' || c.sha || ' succeeded: 12 objects live and healthy' END
    WHEN 9 THEN CASE WHEN c.failed THEN 'DEPLOYMENT_KIND_AUTO_ROLLBACK of ' || c.prev_sha || ' succeeded'
                     ELSE 'drift detected on Deployment/web' END
    ELSE 'event ' || c.slot || ' of deployment dep-' || c.k END,
  CASE WHEN c.slot = 0 THEN jsonb_build_object('signature_result', 'SIGNATURE_RESULT_VALID', 'signature_reason', '',
         'previous_sha', c.prev_sha, 'forced_update', false,
         'commit_time_unix', extract(epoch FROM c.t - interval '15 minutes')::bigint)
       WHEN c.slot BETWEEN 3 AND 8 OR (c.slot = 9 AND c.failed) THEN jsonb_build_object(
         'kind', CASE WHEN c.slot = 9 THEN 'DEPLOYMENT_KIND_AUTO_ROLLBACK' ELSE 'DEPLOYMENT_KIND_ROLLOUT' END,
         'state', CASE WHEN c.slot = 3 OR c.slot BETWEEN 4 AND 7 THEN 'DEPLOYMENT_STATE_RUNNING'
                       WHEN c.slot = 8 AND c.failed THEN 'DEPLOYMENT_STATE_FAILED' ELSE 'DEPLOYMENT_STATE_SUCCEEDED' END,
         'manifests_digest', 'sha256:' || md5(c.sha) || md5(c.env), 'previous_sha', c.prev_sha)
       ELSE jsonb_build_object('step', c.slot) END,
  'bench/' || c.i,
  md5((c.i - 1)::text) || md5((c.i - 1)::text || 'x'),
  md5(c.i::text) || md5(c.i::text || 'x')
FROM (
  SELECT g.i, g.i % 10 AS slot, g.i / 10 AS k,
    (g.i / 10) % :apps AS app,
    (ARRAY['dev', 'staging', 'prod', 'eu-prod'])[1 + ((g.i / 10) / :apps) % 4] AS env,
    (g.i / 10) % 13 = 0 AS failed,
    md5((g.i / 10)::text) || substr(md5((g.i / 10)::text || 's'), 1, 8) AS sha,
    md5((g.i / 10 - 4 * :apps)::text) || substr(md5((g.i / 10 - 4 * :apps)::text || 's'), 1, 8) AS prev_sha,
    timestamptz '2025-01-01 00:00:00+00' + g.i * interval '31.536 seconds' AS t
  FROM generate_series(1, :events) AS g(i)
) c;
UPDATE audit.chain_head SET sequence = (SELECT max(sequence) FROM audit.events),
  hash = (SELECT hash FROM audit.events ORDER BY sequence DESC LIMIT 1);
