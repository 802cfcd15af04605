#!/usr/bin/env bash
# scripts/pg-cluster start-secure (make up's PostgreSQL): pg_hba.conf has no
# trust rule, local or TCP, whether the cluster is new, was made by `start`
# (trust) and stopped, or is still running from `start`; the superuser gets
# in only by peer on the socket (pg-cluster psql); over TCP every login needs
# its password. Before start-secure, make up's cluster trusted everyone.
set -euo pipefail
root=${1:?usage: pg_cluster_secure_test.sh <source-dir>}
work=$(mktemp -d /tmp/ferry-pg-secure.XXXXXX)
chmod 755 "$work"
cleanup() {
  for c in new old live; do
    "$root/scripts/pg-cluster" stop "$work/$c" >/dev/null 2>&1 || true
    [[ -f "$work/$c/cluster-dir" ]] && rm -rf "$(cat "$work/$c/cluster-dir")"
  done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

check() {  # cluster-dir port what
  local c=$1 port=$2 what=$3 rules
  rules=$("$root/scripts/pg-cluster" psql "$c" -d postgres -Atq \
    -c "SELECT type || ' ' || array_to_string(user_name, ',') || ' ' || auth_method FROM pg_hba_file_rules")
  if grep -qw trust <<<"$rules"; then fail "$what: a trust rule remains: $rules"; fi
  [[ "$rules" == $'local postgres peer\nhost all scram-sha-256' ]] || fail "$what: unexpected rules: $rules"
  if PGPASSFILE=/dev/null psql -X -w "postgresql://postgres@127.0.0.1:$port/postgres" -c "SELECT 1" >/dev/null 2>&1; then
    fail "$what: the superuser got in over TCP without a password"
  fi
  "$root/scripts/pg-cluster" psql "$c" -d postgres -qc "CREATE ROLE probe LOGIN PASSWORD 'probe-pass'" 2>/dev/null ||
    "$root/scripts/pg-cluster" psql "$c" -d postgres -qc "ALTER ROLE probe PASSWORD 'probe-pass'"
  PGPASSWORD=probe-pass psql -X -w "postgresql://probe@127.0.0.1:$port/postgres" -Atc "SELECT 1" >/dev/null ||
    fail "$what: a role with its password cannot log in over TCP"
  if PGPASSWORD=nope psql -X -w "postgresql://probe@127.0.0.1:$port/postgres" -c "SELECT 1" >/dev/null 2>&1; then
    fail "$what: a wrong password got in"
  fi
  echo "ok: $what: $(tr '\n' ';' <<<"$rules")"
}

port=$("$root/scripts/free-port")
"$root/scripts/pg-cluster" start-secure "$work/new" "$port"
check "$work/new" "$port" "new cluster"

port=$("$root/scripts/free-port")
"$root/scripts/pg-cluster" start "$work/old" "$port" >/dev/null
"$root/scripts/pg-cluster" stop "$work/old"
"$root/scripts/pg-cluster" start-secure "$work/old" "$port"
check "$work/old" "$port" "cluster made by start (trust), restarted secure"

port=$("$root/scripts/free-port")
"$root/scripts/pg-cluster" start "$work/live" "$port" >/dev/null
"$root/scripts/pg-cluster" start-secure "$work/live" "$port"
check "$work/live" "$port" "cluster still running from start"
