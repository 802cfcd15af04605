-- Ferry's PostgreSQL roles (docs/operations.md, "Database roles"). Run it
-- with psql as a superuser (or a CREATEROLE role that owns the database), in
-- Ferry's database, before the services' `--migrate-only` step. Idempotent:
-- run it again after every upgrade (make up, the chart and compose do).
--
--   FERRY_DB_PASSWORD_MIGRATOR=... FERRY_DB_PASSWORD_PLANNER=... \
--     psql -X -v ON_ERROR_STOP=1 -d ferry -f db-roles.sql
--
-- Passwords come from the environment (never the command line):
-- FERRY_DB_PASSWORD_{MIGRATOR,REPO_WATCHER,PLANNER,DEPLOYER,AUDIT,NOTIFIER}. A login
-- role whose variable is unset or empty keeps the password it has (none
-- when new: peer or certificate authentication then).
--
-- The roles:
--   ferry_owner         NOLOGIN. Owns the schemas repo_watcher, planner,
--                       deployer, audit, notifier and access and everything
--                       in them.
--   ferry_migrator      LOGIN, member of ferry_owner: the `--migrate-only`
--                       step (migrations run as ferry_owner, by SET ROLE).
--   ferry_repo_watcher, ferry_planner, ferry_deployer, ferry_audit,
--   ferry_notifier
--                       LOGIN, one per service: rows of their own schema and
--                       the API tokens they verify (schema/privileges.sql of
--                       each service), nothing else. No service can read or
--                       write another's schema, create or drop anything.
--   ferry_audit_writer  NOLOGIN, granted to ferry_audit: SELECT and INSERT on
--                       audit.events and audit.checkpoints, SELECT and UPDATE
--                       on audit.chain_head (the append path); no UPDATE,
--                       DELETE or TRUNCATE of events, no DDL.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE FUNCTION pg_temp.ferry_role(role_name text, login boolean) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
    BEGIN
      EXECUTE format('CREATE ROLE %I %s', role_name, CASE WHEN login THEN 'LOGIN' ELSE 'NOLOGIN' END);
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;  -- made meanwhile by another run
    END;
  END IF;
  -- Never more than that, whatever was changed by hand since.
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name AND (rolsuper OR rolcreaterole OR rolcreatedb
             OR rolreplication OR rolbypassrls OR rolcanlogin <> login)) THEN
    EXECUTE format('ALTER ROLE %I NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS %s', role_name,
                   CASE WHEN login THEN 'LOGIN' ELSE 'NOLOGIN' END);
  END IF;
END
$$;
SELECT pg_temp.ferry_role('ferry_owner', false), pg_temp.ferry_role('ferry_audit_writer', false),
       pg_temp.ferry_role('ferry_migrator', true), pg_temp.ferry_role('ferry_repo_watcher', true),
       pg_temp.ferry_role('ferry_planner', true), pg_temp.ferry_role('ferry_deployer', true),
       pg_temp.ferry_role('ferry_audit', true), pg_temp.ferry_role('ferry_notifier', true);

-- Passwords, from the environment (psql 15's \getenv).
\set pw ''
\getenv pw FERRY_DB_PASSWORD_MIGRATOR
SELECT :'pw' <> '' AS set_pw \gset
\if :set_pw
ALTER ROLE ferry_migrator PASSWORD :'pw';
\endif
\set pw ''
\getenv pw FERRY_DB_PASSWORD_REPO_WATCHER
SELECT :'pw' <> '' AS set_pw \gset
\if :set_pw
ALTER ROLE ferry_repo_watcher PASSWORD :'pw';
\endif
\set pw ''
\getenv pw FERRY_DB_PASSWORD_PLANNER
SELECT :'pw' <> '' AS set_pw \gset
\if :set_pw
ALTER ROLE ferry_planner PASSWORD :'pw';
\endif
\set pw ''
\getenv pw FERRY_DB_PASSWORD_DEPLOYER
SELECT :'pw' <> '' AS set_pw \gset
\if :set_pw
ALTER ROLE ferry_deployer PASSWORD :'pw';
\endif
\set pw ''
\getenv pw FERRY_DB_PASSWORD_AUDIT
SELECT :'pw' <> '' AS set_pw \gset
\if :set_pw
ALTER ROLE ferry_audit PASSWORD :'pw';
\endif
\set pw ''
\getenv pw FERRY_DB_PASSWORD_NOTIFIER
SELECT :'pw' <> '' AS set_pw \gset
\if :set_pw
ALTER ROLE ferry_notifier PASSWORD :'pw';
\endif
\unset pw

-- Memberships: the migrator acts as the owner; the audit service appends as
-- the writer; the owner may grant the writer (services/audit/schema/001 does,
-- to whoever migrates). No service role is a member of the owner.
DO $$
DECLARE
  r text;
BEGIN
  IF NOT pg_has_role('ferry_migrator', 'ferry_owner', 'MEMBER') THEN
    GRANT ferry_owner TO ferry_migrator;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_auth_members WHERE roleid = 'ferry_audit_writer'::regrole
                 AND member = 'ferry_owner'::regrole AND admin_option) THEN
    GRANT ferry_audit_writer TO ferry_owner WITH ADMIN OPTION;
  END IF;
  IF NOT pg_has_role('ferry_audit', 'ferry_audit_writer', 'MEMBER') THEN
    GRANT ferry_audit_writer TO ferry_audit;
  END IF;
  FOREACH r IN ARRAY ARRAY['ferry_repo_watcher', 'ferry_planner', 'ferry_deployer', 'ferry_audit', 'ferry_notifier'] LOOP
    IF pg_has_role(r, 'ferry_owner', 'MEMBER') THEN
      EXECUTE format('REVOKE ferry_owner FROM %I', r);
    END IF;
  END LOOP;
END
$$;

-- This database: the owner creates the schemas; everyone else only connects.
DO $$
BEGIN
  EXECUTE format('GRANT CONNECT, CREATE, TEMPORARY ON DATABASE %I TO ferry_owner', current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO ferry_migrator, ferry_repo_watcher, ferry_planner, '
                 'ferry_deployer, ferry_audit, ferry_notifier', current_database());
END
$$;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- A database that Ferry used with one login role (before per-service roles):
-- its schemas and everything in them go to ferry_owner, so that the
-- migrations (as ferry_owner) and the grants of schema/privileges.sql work.
DO $$
DECLARE
  s text;
  r record;
BEGIN
  FOREACH s IN ARRAY ARRAY['repo_watcher', 'planner', 'deployer', 'audit', 'notifier', 'access'] LOOP
    CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = s);
    IF (SELECT nspowner FROM pg_namespace WHERE nspname = s) <> 'ferry_owner'::regrole THEN
      EXECUTE format('ALTER SCHEMA %I OWNER TO ferry_owner', s);
    END IF;
    -- Tables (with their indexes, triggers and serial sequences), views and
    -- free-standing sequences.
    FOR r IN
      SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = s AND c.relkind IN ('r', 'p', 'v', 'm', 'S') AND c.relowner <> 'ferry_owner'::regrole
        AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                             AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
    LOOP
      EXECUTE format('ALTER %s %I.%I OWNER TO ferry_owner',
                     CASE r.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                    ELSE 'TABLE' END, s, r.relname);
    END LOOP;
    FOR r IN
      SELECT p.oid::regprocedure AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = s AND p.proowner <> 'ferry_owner'::regrole
    LOOP
      EXECUTE format('ALTER ROUTINE %s OWNER TO ferry_owner', r.f);
    END LOOP;
  END LOOP;
END
$$;
