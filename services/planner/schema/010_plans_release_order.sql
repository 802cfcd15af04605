-- Issue #23: the deployers' plan stream (ListReleased: released plans still
-- APPROVED or EXECUTING after a cursor, in release order, one at a time)
-- ran as a prepared statement whose generic plan ANDed the plans_open index
-- (every plan ever open, dead versions included) with the release_seq one:
-- its cost grew with the plans the database had ever held (0.24 ms a call
-- at 2,000 plans, called twice per plan). This index answers it in release
-- order from the cursor on, whatever the table holds.
CREATE INDEX IF NOT EXISTS plans_release_order ON plans (release_seq)
  WHERE release_seq IS NOT NULL AND state IN (2, 4);
