-- Issue #23: a revision reads only the applications its changed paths can
-- touch, not every application of its repository. An application is touched
-- when a changed path lies under one of its roots (its path and the input
-- paths its last render read: Kustomize bases, Helm values, contentFrom
-- files), or a root lies under a changed path. With `roots` and
-- `root_ancestors` (both kept by PostgreSQL from path and input_paths) both
-- are array overlaps on GIN indexes:
--   roots && {every prefix of every changed path, "" included}
--   root_ancestors && {the changed paths}
-- The planner re-checks each candidate exactly (IsUnderRepoPath), so this is
-- only a filter; a row written before this migration (path NULL) is always
-- a candidate until the planner fills its path in.
CREATE OR REPLACE FUNCTION repo_path_ancestors(roots text[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT array_agg(DISTINCT a ORDER BY a) FROM (
    SELECT ''::text AS a
    UNION ALL
    SELECT array_to_string((string_to_array(r, '/'))[1:n], '/')
    FROM unnest(roots) AS r, generate_series(1, cardinality(string_to_array(r, '/')) - 1) AS n
    WHERE r IS NOT NULL AND r <> ''
  ) AS x
$$;
ALTER TABLE applications ADD COLUMN IF NOT EXISTS path text;
ALTER TABLE applications ADD COLUMN IF NOT EXISTS roots text[]
  GENERATED ALWAYS AS (array_prepend(path, input_paths)) STORED;
ALTER TABLE applications ADD COLUMN IF NOT EXISTS root_ancestors text[]
  GENERATED ALWAYS AS (repo_path_ancestors(array_prepend(path, input_paths))) STORED;
CREATE INDEX IF NOT EXISTS applications_roots ON applications USING gin (roots);
CREATE INDEX IF NOT EXISTS applications_root_ancestors ON applications USING gin (root_ancestors);
-- The rows still without a path, so that "path IS NULL" is an index scan
-- too (all three arms of the lookup's OR then combine as bitmaps).
CREATE INDEX IF NOT EXISTS applications_without_path ON applications (id) WHERE path IS NULL;
