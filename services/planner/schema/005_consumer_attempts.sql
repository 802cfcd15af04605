-- Poison isolation of the planner's stream consumers: the item (revision)
-- each consumer is working on, recorded before its handler runs and
-- forgotten when the cursor moves past it. An attempt that never ended (the
-- planner crashed, was killed after hanging, or the handler threw) is still
-- counted at the next start; an item that reached the quarantine limit is
-- skipped with an audit event instead of being retried forever.
CREATE TABLE IF NOT EXISTS consumer_attempts (
  name        text PRIMARY KEY,  -- the consumer, as in cursors.name
  item_key    text NOT NULL,     -- the item after the consumer's cursor
  attempts    integer NOT NULL,  -- attempts recorded and not taken back
  last_error  text NOT NULL DEFAULT '',
  update_time timestamptz NOT NULL DEFAULT now()
);
