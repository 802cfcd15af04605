#!/usr/bin/env bash
# scripts/pg-cluster start-secure (make up's PostgreSQL): pg_hba.conf has no
# trust rule, local or TCP, whether the cluster is new, was made by `start`
# (trust) and stopped, or is still running from `start`; the superuser gets
# in only by peer on the socket (pg-cluster psql); every other login needs
# its password, over TCP and on the socket (database ferry only, where make
# up's services connect); the socket's folder (pg-cluster socket) is 0700,
# the server's user's, and another OS user cannot connect through it. A
# cluster folder too long for a socket path gets a private socket folder
# under /tmp, gone after stop. Before start-secure, make up's cluster
# trusted everyone; before the socket rule, the services used loopback TCP.
set -euo pipefail
root=${1:?usage: pg_cluster_secure_test.sh <source-dir>}
work=$(mktemp -d /tmp/ferry-pg-secure.XXXXXX)
chmod 755 "$work"
long=long-$(printf 'x%.0s' $(seq 100))
cleanup() {
  for c in new old live "$long"; do
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
  [[ "$rules" == $'local postgres peer\nlocal all scram-sha-256\nhost all scram-sha-256' ]] ||
    fail "$what: unexpected rules: $rules"
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
  # The socket: a password for the database ferry, nothing else.
  local sock sock_url
  sock=$("$root/scripts/pg-cluster" socket "$c")
  [[ -S "$sock/.s.PGSQL.$port" ]] || fail "$what: no socket $sock/.s.PGSQL.$port"
  [[ "$(stat -c '%U %a' "$sock")" == "$(server_user) 700" ]] ||
    fail "$what: socket folder $sock is $(stat -c '%U %a' "$sock"), want $(server_user) 700"
  [[ $("$root/scripts/pg-cluster" psql "$c" -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = 'ferry'") == 1 ]] ||
    "$root/scripts/pg-cluster" psql "$c" -d postgres -qc "CREATE DATABASE ferry"
  sock_url="postgresql://probe@/ferry?host=$sock&port=$port"
  [[ $(PGPASSWORD=probe-pass psql -X -w "$sock_url" -Atc "SELECT inet_client_addr() IS NULL") == t ]] ||
    fail "$what: a role with its password cannot log in on the socket"
  if PGPASSFILE=/dev/null psql -X -w "$sock_url" -c "SELECT 1" >/dev/null 2>&1; then
    fail "$what: a role got in on the socket without a password"
  fi
  if PGPASSWORD=nope psql -X -w "$sock_url" -c "SELECT 1" >/dev/null 2>&1; then
    fail "$what: a wrong password got in on the socket"
  fi
  if PGPASSWORD=probe-pass psql -X -w "postgresql://probe@/postgres?host=$sock&port=$port" -c "SELECT 1" >/dev/null 2>&1; then
    fail "$what: a role got into the database postgres on the socket"
  fi
  # libpq's passfile names a socket by its folder.
  (umask 077 && printf '%s:%s:ferry:probe:probe-pass\n' "$sock" "$port" >"$work/probe.pgpass")
  PGPASSFILE=/dev/null psql -X -w "$sock_url&passfile=$work/probe.pgpass" -Atc "SELECT 1" >/dev/null ||
    fail "$what: a passfile line for the socket's folder is not used"
  # Another OS user cannot reach the socket, password or not (root can test it).
  if [[ $(id -u) -eq 0 ]] &&
     runuser -u nobody -- env PGPASSWORD=probe-pass psql -X -w "$sock_url" -c "SELECT 1" >/dev/null 2>&1; then
    fail "$what: the user nobody connected on the socket"
  fi
  echo "ok: $what: $(tr '\n' ';' <<<"$rules") socket in $sock"
}
server_user() { if [[ $(id -u) -eq 0 ]]; then echo postgres; else id -un; fi; }

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

# A cluster folder whose socket path would pass sun_path's 107 bytes: the
# socket goes to a private folder under /tmp, and stop removes it.
port=$("$root/scripts/free-port")
"$root/scripts/pg-cluster" start-secure "$work/$long" "$port"
check "$work/$long" "$port" "cluster in a long path"
sock=$("$root/scripts/pg-cluster" socket "$work/$long")
[[ "$sock" == /tmp/ferry-pg.* ]] || fail "long path: socket in $sock"
"$root/scripts/pg-cluster" stop "$work/$long"
[[ ! -e "$sock" ]] || fail "long path: $sock left after stop"
echo "ok: a long cluster path gets its socket in a private folder under /tmp, removed at stop"
