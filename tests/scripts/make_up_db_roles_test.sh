#!/usr/bin/env bash
# `make up` (scripts/ferry-up) with per-service database roles, for real: its
# PostgreSQL has no trust line in pg_hba.conf (local or TCP), the superuser is
# reachable only by peer on the socket, every other login needs its password;
# the passwords are generated into $FERRY_HOME/db/ mode 0600 and appear in no
# process's arguments and no log; the five services run end to end (the
# example deploys) each logged in as its own role, by password on the
# server's Unix socket (not loopback TCP), none as a superuser or the owner;
# the socket's folder is 0700 and shut to other OS users; TCP on 127.0.0.1
# still answers to a password; and each service's role cannot touch the
# audit log's triggers.
#   make_up_db_roles_test.sh <repo-root> <build-dir>
set -euo pipefail
root=${1:?}; build=${2:?}
off=500
work=$(mktemp -d /tmp/ferry-roles-test.XXXXXX)
chmod 755 "$work"
up_pid=""
cleanup() {
  if [[ -n "$up_pid" ]]; then kill -TERM -- "-$up_pid" 2>/dev/null || true; wait "$up_pid" 2>/dev/null || true; fi
  [[ -f "$work/ferry/pg/cluster-dir" ]] && rm -rf "$(cat "$work/ferry/pg/cluster-dir")"
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -n 30 "$work/up.log" >&2 || true; exit 1; }
home=$work/ferry
pg_port=$((54329 + off))

FERRY_HOME="$home" FERRY_PORT_OFFSET=$off FERRY_READY_FILE="$work/ready" FERRY_BUILD_DIR="$build" \
  setsid "$root/scripts/ferry-up" >"$work/up.log" 2>&1 &
up_pid=$!
for _ in $(seq 240); do [[ -f "$work/ready" ]] && break; kill -0 "$up_pid" 2>/dev/null || fail "ferry-up exited"; sleep 1; done
[[ -f "$work/ready" ]] || fail "Ferry did not come up with the example deployed"
echo "ok: make up deployed the example with per-service roles"

superuser() { "$root/scripts/pg-cluster" psql "$home/pg" -Atq "$@"; }

# pg_hba.conf as the server reads it: no trust, no ident for TCP.
rules=$(superuser -d ferry -c "SELECT type || ' ' || array_to_string(user_name, ',') || ' ' || auth_method FROM pg_hba_file_rules")
echo "$rules" | sed 's/^/  pg_hba: /'
if grep -qw trust <<<"$rules"; then fail "pg_hba.conf has a trust line: $rules"; fi
grep -qx "local postgres peer" <<<"$rules" || fail "no peer line for the superuser on the socket: $rules"
grep -qx "local all scram-sha-256" <<<"$rules" || fail "the socket is not scram-sha-256 for the roles: $rules"
grep -qx "host all scram-sha-256" <<<"$rules" || fail "TCP is not scram-sha-256 for all: $rules"
if [[ $(grep -cv '^\(local postgres peer\|local all scram-sha-256\|host all scram-sha-256\)$' <<<"$rules") -ne 0 ]]; then
  fail "pg_hba.conf has other lines: $rules"
fi
sock=$("$root/scripts/pg-cluster" socket "$home/pg")
[[ -S "$sock/.s.PGSQL.$pg_port" ]] || fail "no socket $sock/.s.PGSQL.$pg_port"
pg_user=$(id -un); [[ $(id -u) -eq 0 ]] && pg_user=postgres
[[ "$(stat -c '%U %a' "$sock")" == "$pg_user 700" ]] || fail "socket folder $sock is $(stat -c '%U %a' "$sock")"
grep -qF "PostgreSQL on its socket in $sock" "$work/up.log" || fail "make up does not say where the socket is"
# Without a password nobody gets in over TCP, the superuser included.
for user in postgres ferry_planner ferry_migrator; do
  if PGPASSFILE=/dev/null psql -X -w "postgresql://$user@127.0.0.1:$pg_port/ferry" -c "SELECT 1" >/dev/null 2>&1; then
    fail "$user logged in over TCP without a password"
  fi
done
# A wrong password neither.
if PGPASSWORD=wrong psql -X -w "postgresql://ferry_planner@127.0.0.1:$pg_port/ferry" -c "SELECT 1" >/dev/null 2>&1; then
  fail "ferry_planner logged in with a wrong password"
fi
# On the socket the same: a service role without or with a wrong password fails.
for pw in "" wrong; do
  if PGPASSFILE=/dev/null PGPASSWORD=$pw psql -X -w "postgresql://ferry_planner@/ferry?host=$sock&port=$pg_port" \
       -c "SELECT 1" >/dev/null 2>&1; then
    fail "ferry_planner logged in on the socket with password '$pw'"
  fi
done
# Another OS user cannot reach the socket at all (checked when root can switch).
if [[ $(id -u) -eq 0 ]] && runuser -u nobody -- env PGPASSWORD="$(cat "$home/db/planner.password")" \
     psql -X -w "postgresql://ferry_planner@/ferry?host=$sock&port=$pg_port" -c "SELECT 1" >/dev/null 2>&1; then
  fail "the user nobody connected on the socket with the planner's password"
fi
echo "ok: no trust; TCP and the socket need each role's password; the socket's folder is $pg_user's, 0700"

# The secrets: a 0700 folder, 0600 files, in no log and no command line.
[[ $(stat -c %a "$home/db") == 700 ]] || fail "$home/db is mode $(stat -c %a "$home/db")"
for role in migrator repo_watcher planner deployer audit notifier; do
  for f in "$home/db/$role.password" "$home/db/$role.pgpass"; do
    [[ $(stat -c %a "$f") == 600 ]] || fail "$f is mode $(stat -c %a "$f")"
  done
  pw=$(cat "$home/db/$role.password")
  [[ ${#pw} -ge 32 ]] || fail "$role's password is short"
  if grep -rqF -- "$pw" "$home/logs" "$work/up.log"; then fail "$role's password is in a log"; fi
  if grep -qF -- "$pw" /proc/[0-9]*/cmdline 2>/dev/null; then fail "$role's password is on a command line"; fi
  if grep -qF -- "$pw" /proc/[0-9]*/environ 2>/dev/null; then fail "$role's password is in a process environment"; fi
done
echo "ok: passwords mode 0600 in $home/db, in no log, command line or environment"
# The Terraform state's role and URL (the deployer's --terraform-state-url-file):
# 0600, in no log and no command line (terraform runs get it as PG_CONN_STR).
for f in "$home/db/terraform.password" "$home/db/terraform-state.url"; do
  [[ $(stat -c %a "$f") == 600 ]] || fail "$f is mode $(stat -c %a "$f")"
done
pw=$(cat "$home/db/terraform.password")
if grep -rqF -- "$pw" "$home/logs" "$work/up.log"; then fail "the Terraform state password is in a log"; fi
if grep -qF -- "$pw" /proc/[0-9]*/cmdline 2>/dev/null; then fail "the Terraform state password is on a command line"; fi
echo "ok: the Terraform state's password and URL mode 0600, in no log or command line"

# Each service logged in as its own role; nothing else but us as postgres.
sessions=$(superuser -d ferry -c "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'ferry' AND pid <> pg_backend_pid() ORDER BY 1" | tr '\n' ' ')
echo "  sessions on ferry: $sessions"
[[ "$sessions" == "ferry_audit ferry_deployer ferry_notifier ferry_planner ferry_repo_watcher " ]] ||
  fail "want exactly the five service roles connected, got: $sessions"
# ... all on the Unix socket (client_port -1), none over TCP.
tcp=$(superuser -d ferry -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'ferry' AND usename LIKE 'ferry\_%' AND client_port <> -1")
local_sessions=$(superuser -d ferry -c "SELECT count(*) FROM pg_stat_activity WHERE datname = 'ferry' AND usename LIKE 'ferry\_%' AND client_port = -1")
[[ $tcp == 0 && $local_sessions -ge 5 ]] || fail "services' sessions: $tcp over TCP, $local_sessions on the socket"
echo "ok: the services' $local_sessions sessions are all on the Unix socket"
owners=$(superuser -d ferry -c "SELECT string_agg(DISTINCT pg_get_userbyid(nspowner), ',') FROM pg_namespace WHERE nspname IN ('repo_watcher','planner','deployer','audit','access')")
[[ "$owners" == ferry_owner ]] || fail "schemas owned by $owners"

# Each service's own role cannot unprotect the audit log, nor read another schema.
for role in repo_watcher planner deployer audit; do
  # Its passfile serves TCP as well as the socket (other tools use TCP).
  psql -X -w "postgresql://ferry_$role@127.0.0.1:$pg_port/ferry?passfile=$home/db/$role.pgpass" -Atqc "SELECT 1" \
    >/dev/null || fail "ferry_$role cannot log in over TCP with its passfile"
  url="postgresql://ferry_$role@/ferry?host=$sock&port=$pg_port&passfile=$home/db/$role.pgpass"
  psql -X -w "$url" -Atqc "SELECT current_user" >/dev/null || fail "ferry_$role cannot log in with its passfile"
  for sql in "DROP TRIGGER events_append_only ON audit.events" "UPDATE audit.events SET message = 'x'" \
             "DELETE FROM audit.events" "TRUNCATE audit.events" \
             "UPDATE audit.deployed_intervals SET valid_to = NULL" \
             "SET ROLE ferry_audit_writer; DELETE FROM audit.deployed_intervals"; do
    if psql -X -w "$url" -v ON_ERROR_STOP=1 -qc "$sql" >/dev/null 2>&1; then fail "ferry_$role could: $sql"; fi
  done
  other=planner.plans; [[ $role == planner ]] && other=deployer.deployments
  if psql -X -w "$url" -v ON_ERROR_STOP=1 -qc "SELECT 1 FROM $other LIMIT 1" >/dev/null 2>&1; then
    fail "ferry_$role read $other"
  fi
done
[[ $(superuser -d ferry -c "SELECT count(*) FROM audit.events") -gt 0 ]] || fail "no audit events were appended"
echo "ok: each service as its own role; none can change audit.events or read another's schema"
# The example's DEPLOYMENT_SUCCEEDED, appended by ferry_audit (through its
# writer role), moved time travel's live intervals through the owner's trigger
# (005_deployed_intervals.sql): the table is its recomputation from the events.
# The event reaches the audit log through the deployer's outbox: wait for it.
for _ in $(seq 1 120); do
  [[ $(superuser -d ferry -c "SELECT count(*) FROM audit.events WHERE action = 'AUDIT_ACTION_DEPLOYMENT_SUCCEEDED'") -gt 0 ]] && break
  sleep 0.5
done
intervals=$(superuser -d ferry -c "SELECT string_agg(sequence || ':' || coalesce(valid_to::text, 'live'), ',' ORDER BY sequence) FROM audit.deployed_intervals")
recomputed=$(superuser -d ferry -c "SELECT string_agg(sequence || ':' || coalesce(n::text, 'live'), ',' ORDER BY sequence) FROM (SELECT sequence, lead(event_time) OVER (PARTITION BY application_id, environment_id ORDER BY event_time, sequence) AS n FROM audit.events WHERE action = 'AUDIT_ACTION_DEPLOYMENT_SUCCEEDED') s")
[[ -n "$intervals" && "$intervals" == "$recomputed" ]] ||
  fail "audit.deployed_intervals ($intervals) is not its recomputation from the events ($recomputed)"
echo "ok: the example's deployment is in audit.deployed_intervals, kept by the owner's trigger"
