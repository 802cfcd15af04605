-- The notifier's state (docs/notifier.md): how far it has read the audit
-- trail, the subscriptions, and the delivery outbox.

-- The sequence of the last audit event recorded; moved in the same
-- transaction that adds the event's deliveries.
CREATE TABLE audit_cursor (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  after_sequence bigint NOT NULL
);
INSERT INTO audit_cursor (singleton, after_sequence) VALUES (true, 0);

-- Subscriptions, by API ("api") or from --subscriptions-file ("config").
-- spec is the ferry.v1.Subscription (secret references only, never a secret).
CREATE TABLE subscriptions (
  name text PRIMARY KEY,
  source text NOT NULL CHECK (source IN ('api', 'config')),
  spec bytea NOT NULL,
  create_time timestamptz NOT NULL DEFAULT now()
);

-- The outbox: one row per (event, subscription), so an event is never
-- delivered to one subscription twice by its own doing. request is the JSON
-- document saying how to send it (no secret values). state: 1 pending,
-- 2 delivered, 3 failed (ferry.v1.DeliveryState).
CREATE TABLE deliveries (
  id bigserial PRIMARY KEY,
  event_sequence bigint NOT NULL,
  subscription text NOT NULL,
  event_kind integer NOT NULL,
  target text NOT NULL,
  request text NOT NULL,
  state smallint NOT NULL DEFAULT 1 CHECK (state IN (1, 2, 3)),
  attempts integer NOT NULL DEFAULT 0,
  last_error text NOT NULL DEFAULT '',
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (event_sequence, subscription)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 1;
CREATE INDEX deliveries_by_subscription ON deliveries (subscription, id);
