-- The Terraform state database (docs/terraform.md): a database
-- ferry_terraform owned by its own login role ferry_terraform, not by a
-- service's role (terraform's pg backend makes a schema ferry_tf_<env> per
-- environment there and locks it with advisory locks). Idempotent. The
-- password comes from the environment variable FERRY_DB_PASSWORD_TERRAFORM
-- (never a command line):
--   FERRY_DB_PASSWORD_TERRAFORM=... psql -X -v ON_ERROR_STOP=1 -d postgres -f terraform-db.sql
-- Run by scripts/ferry-up (make up) and compose's db-roles service, as the
-- superuser; for an external database, run it once as an administrator.
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ferry_terraform') AS make_role \gset
\if :make_role
CREATE ROLE ferry_terraform LOGIN;
\endif
\getenv pw FERRY_DB_PASSWORD_TERRAFORM
ALTER ROLE ferry_terraform PASSWORD :'pw';
SELECT NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'ferry_terraform') AS make_db \gset
\if :make_db
CREATE DATABASE ferry_terraform OWNER ferry_terraform;
\endif
REVOKE ALL ON DATABASE ferry_terraform FROM PUBLIC;
