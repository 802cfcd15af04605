-- Issue #23: the deployer's acknowledgement and outcome of each plan change
-- its progress only (its state, deployment, update time and failure), yet
-- each rewrote the whole stored plan: twice per application deployed, with
-- its manifests and diffs. A plan is now stored as two encodings, its body
-- without its progress and its progress alone, and read as their
-- concatenation (a protobuf message parsed from two encodings one after the
-- other is the second merged into the first; the body sets none of the
-- progress's fields). A change of the progress writes only `progress`.
--
-- Rows written before this migration keep the whole plan in `body` and an
-- empty `progress`, which reads the same; the next change of such a plan is
-- written whole (under its row lock), in the new form.
ALTER TABLE plans ADD COLUMN progress bytea NOT NULL DEFAULT ''::bytea;
-- Read by key with its body, as the body is (012).
ALTER TABLE plans ALTER COLUMN progress SET STATISTICS 0;
