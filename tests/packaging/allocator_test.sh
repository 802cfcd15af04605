#!/usr/bin/env bash
# Each service runs on jemalloc (common/allocator links it into the five
# service executables, issue #23), not on glibc's malloc, and with the
# options common/allocator/jemalloc_options.cc gives it (two arenas): asked
# by MALLOC_CONF to print its statistics at exit, jemalloc does, options
# included, and only jemalloc reads that variable. A service linked without
# it, with jemalloc dropped by the linker because nothing calls it by name,
# or without the options file, fails this test.
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
  if ! grep -q "Begin jemalloc statistics" <<<"$out"; then
    echo "ferry-$svc: not running on jemalloc (no statistics printed under MALLOC_CONF=stats_print:true)"
    failed=1
  elif ! grep -q "opt.narenas: 2$" <<<"$out"; then
    echo "ferry-$svc: jemalloc without its options: $(grep "opt.narenas" <<<"$out" || echo "no opt.narenas line")"
    failed=1
  else
    echo "ferry-$svc: jemalloc, 2 arenas"
  fi
done
exit $failed
