-- "What was live at T" as one index lookup (docs/history.md, "How the
-- queries run"): a derived table of live intervals, one row per
-- DEPLOYMENT_SUCCEEDED event, live from its event time until the next
-- success of the same application and environment (in (event_time,
-- sequence) order; unbounded while it is the last). The answer at T is the
-- rows whose interval contains T, found through a GiST index on the range,
-- joined to their events by primary key for every column shown.
--
-- Before this, each query found the pairs by a skip scan of
-- events_succeeded_target_time and probed each pair backwards: 2,000 index
-- descents for 1,000 pairs, 30-45 ms of PostgreSQL time at a million events.
--
-- Who may write it: nobody but its owner. The table is maintained by an
-- AFTER INSERT trigger on events, a SECURITY DEFINER function owned by the
-- schema owner, in the transaction of the append itself (so it never lags
-- and is never half-applied), whoever inserts the event. ferry_audit and
-- ferry_audit_writer may only read it (privileges.sql and below): a service
-- can neither rewrite events nor make time travel lie about them. The table
-- holds only the pair, the event's sequence and its interval; every column an
-- answer shows is read from the (append-only) event.
--
-- Events may arrive out of time order (event_time is the emitter's clock;
-- the chain orders by sequence): the trigger inserts the new success between
-- its neighbours in (event_time, sequence) order, whichever they are.
CREATE TABLE deployed_intervals (
  sequence       bigint PRIMARY KEY,          -- the DEPLOYMENT_SUCCEEDED event
  application_id text NOT NULL,
  environment_id text NOT NULL,
  valid_from     timestamptz NOT NULL,        -- its event_time
  valid_to       timestamptz,                 -- the next success's event_time; NULL while live
  -- [valid_from, valid_to): empty when the next success has the same time.
  live           tstzrange GENERATED ALWAYS AS (tstzrange(valid_from, valid_to, '[)')) STORED
);
-- State at T: the intervals containing T, read from the index alone (an
-- index-only scan: the columns the join needs are included).
CREATE INDEX deployed_intervals_live ON deployed_intervals USING gist (live)
  INCLUDE (sequence, application_id, environment_id);
-- Neighbours of a new success, a pair's interval before a time (ListChanges'
-- targets), and a pair's state when the query names the application.
CREATE INDEX deployed_intervals_pair_from ON deployed_intervals
  (application_id, environment_id, valid_from, sequence);
-- The pairs that moved in [T1, T2), and where each of them ended up.
CREATE INDEX deployed_intervals_from ON deployed_intervals (valid_from)
  INCLUDE (sequence, application_id, environment_id);

-- Keeps deployed_intervals in step with each DEPLOYMENT_SUCCEEDED inserted.
CREATE FUNCTION record_deployed_interval() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  next_from timestamptz;
BEGIN
  -- One writer per pair at a time (appends are already serialised by the
  -- chain head; this keeps the table right for any other inserter too).
  PERFORM pg_advisory_xact_lock(hashtext('ferry.deployed_intervals'),
                                hashtext(NEW.application_id || '/' || NEW.environment_id));
  -- The next success of the pair after this one, if any arrived first.
  SELECT d.valid_from INTO next_from FROM deployed_intervals d
   WHERE d.application_id = NEW.application_id AND d.environment_id = NEW.environment_id
     AND (d.valid_from, d.sequence) > (NEW.event_time, NEW.sequence)
   ORDER BY d.valid_from, d.sequence LIMIT 1;
  -- The previous one now ends where this one starts.
  UPDATE deployed_intervals SET valid_to = NEW.event_time
   WHERE sequence = (SELECT d.sequence FROM deployed_intervals d
                      WHERE d.application_id = NEW.application_id AND d.environment_id = NEW.environment_id
                        AND (d.valid_from, d.sequence) < (NEW.event_time, NEW.sequence)
                      ORDER BY d.valid_from DESC, d.sequence DESC LIMIT 1);
  INSERT INTO deployed_intervals (sequence, application_id, environment_id, valid_from, valid_to)
  VALUES (NEW.sequence, NEW.application_id, NEW.environment_id, NEW.event_time, next_from);
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION record_deployed_interval() FROM PUBLIC;
CREATE TRIGGER events_record_deployed_interval AFTER INSERT ON events
  FOR EACH ROW WHEN (NEW.action = 'AUDIT_ACTION_DEPLOYMENT_SUCCEEDED')
  EXECUTE FUNCTION record_deployed_interval();

-- Backfill from the events already stored.
INSERT INTO deployed_intervals (sequence, application_id, environment_id, valid_from, valid_to)
SELECT sequence, application_id, environment_id, event_time,
       lead(event_time) OVER (PARTITION BY application_id, environment_id ORDER BY event_time, sequence)
  FROM events WHERE action = 'AUDIT_ACTION_DEPLOYMENT_SUCCEEDED';

REVOKE ALL ON deployed_intervals FROM ferry_audit_writer;
GRANT SELECT ON deployed_intervals TO ferry_audit_writer;
