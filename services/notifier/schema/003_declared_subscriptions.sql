-- Subscriptions an application declares in its ferry.yaml (read from the
-- planner; docs/notifier.md, "Subscriptions in ferry.yaml"), kept as
-- "<application>/<name>" with source 'declared' and replaced as a set.
ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_source_check;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_source_check CHECK (source IN ('api', 'config', 'declared'));
