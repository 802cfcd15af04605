#!/usr/bin/env bash
# Each service runs on jemalloc (the top-level CMakeLists.txt links it into
# the five service executables, issue #23), not on glibc's malloc: asked by
# MALLOC_CONF to print its statistics at exit, jemalloc does, and only
# jemalloc reads that variable. A service linked without it, or with
# jemalloc dropped by the linker because nothing calls it by name, prints
# nothing and fails this test.
# usage: allocator_test.sh <bin-dir>
set -euo pipefail
bin=$1
failed=0
for svc in repo-watcher planner deployer audit notifier; do
  exe=$bin/ferry-$svc
  out=$(MALLOC_CONF=stats_print:true "$exe" --help 2>&1 >/dev/null) || {
    echo "ferry-$svc --help failed"
    failed=1
    continue
  }
  if grep -q "Begin jemalloc statistics" <<<"$out"; then
    echo "ferry-$svc: jemalloc"
  else
    echo "ferry-$svc: not running on jemalloc (no statistics printed under MALLOC_CONF=stats_print:true)"
    failed=1
  fi
done
exit $failed
