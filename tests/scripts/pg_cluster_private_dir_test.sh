#!/usr/bin/env bash
# scripts/pg-cluster started from a folder PostgreSQL's own user cannot
# enter (a clone under /root, mode 700, as root): the cluster must still
# start, answer, stop and start again with its data. Before the fix, initdb
# failed with "could not access directory ...: Permission denied".
set -euo pipefail
root=${1:?usage: pg_cluster_private_dir_test.sh <source-dir>}
if [[ $(id -u) -ne 0 ]]; then
  echo "not root: PostgreSQL runs as this user, which can reach its own folders; nothing to check"
  exit 0
fi
private=$(mktemp -d /root/ferry-pg-private.XXXXXX 2>/dev/null || mktemp -d /tmp/ferry-pg-private.XXXXXX)
chmod 700 "$private"
cleanup() {
  "$root/scripts/pg-cluster" stop "$private/clone/.ferry/pg" >/dev/null 2>&1 || true
  [[ -f "$private/clone/.ferry/pg/cluster-dir" ]] && rm -rf "$(cat "$private/clone/.ferry/pg/cluster-dir")"
  rm -rf "$private"
}
trap cleanup EXIT
if runuser -u postgres -- test -x "$private"; then
  echo "FAIL: the postgres user can enter $private; the test needs a folder it cannot" >&2
  exit 1
fi
mkdir -p "$private/clone/.ferry"
port=$("$root/scripts/free-port")
url=$("$root/scripts/pg-cluster" start "$private/clone/.ferry/pg" "$port")
psql -q "$url" -c "CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)"
"$root/scripts/pg-cluster" stop "$private/clone/.ferry/pg"
url=$("$root/scripts/pg-cluster" start "$private/clone/.ferry/pg" "$port")
got=$(psql -Atq "$url" -c "SELECT v FROM kept")
[[ "$got" == 7 ]] || { echo "FAIL: data not kept across a restart (got '$got')" >&2; exit 1; }
echo "ok: cluster in $(cat "$private/clone/.ferry/pg/cluster-dir"), data kept across a restart"
