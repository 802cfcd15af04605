#!/usr/bin/env bash
# scripts/pg-cluster gives the server an eighth of the machine's memory (or
# of its cgroup's limit) as shared_buffers, between 128 MB and 1 GB, and
# FERRY_PG_OPTIONS still overrides it. Before the change the server ran with
# PostgreSQL's default of 128 MB whatever the machine (issue #23).
set -euo pipefail
root=${1:?usage: pg_cluster_shared_buffers_test.sh <source-dir>}
work=$(mktemp -d /tmp/ferry-pg-buffers.XXXXXX)
chmod 755 "$work"
cleanup() {
  "$root/scripts/pg-cluster" stop "$work/pg" >/dev/null 2>&1 || true
  [[ -f "$work/pg/cluster-dir" ]] && rm -rf "$(cat "$work/pg/cluster-dir")"
  rm -rf "$work"
}
trap cleanup EXIT

# The expected size, worked out here from the same inputs.
kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
for f in /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes; do
  limit=$(cat "$f" 2>/dev/null || true)
  if [[ "$limit" =~ ^[0-9]+$ ]] && (( limit / 1024 < kb )); then kb=$(( limit / 1024 )); fi
done
mb=$(( kb / 1024 / 8 ))
(( mb < 128 )) && mb=128
(( mb > 1024 )) && mb=1024
want=$([[ $(( mb % 1024 )) -eq 0 ]] && echo "$(( mb / 1024 ))GB" || echo "${mb}MB")

said=$("$root/scripts/pg-cluster" shared-buffers)
[[ "$said" == "${mb}MB" ]] || { echo "FAIL: pg-cluster shared-buffers said $said, expected ${mb}MB" >&2; exit 1; }

port=$("$root/scripts/free-port")
url=$("$root/scripts/pg-cluster" start "$work/pg" "$port")
got=$(psql -Atq "$url" -c "SHOW shared_buffers")
[[ "$got" == "$want" ]] || { echo "FAIL: shared_buffers is $got, expected $want (machine: $kb kB)" >&2; exit 1; }
"$root/scripts/pg-cluster" stop "$work/pg"

url=$(FERRY_PG_OPTIONS="-c shared_buffers=200MB" "$root/scripts/pg-cluster" start "$work/pg" "$port")
got=$(psql -Atq "$url" -c "SHOW shared_buffers")
[[ "$got" == "200MB" ]] || { echo "FAIL: FERRY_PG_OPTIONS's shared_buffers=200MB did not win: $got" >&2; exit 1; }
echo "ok: shared_buffers $want on a machine of $kb kB; FERRY_PG_OPTIONS overrides it"
