#!/usr/bin/env bash
# The README's grpcurl lines, as printed, against a real ferry-audit started
# as `make up` starts it (TLS and access control on, with the state that
# scripts/ferry-state makes, on a fresh database of the test PostgreSQL),
# beside the ferry-planner that makes the admin token exist:
# `grpcurl ... list` and `... ferry.v1.Audit/VerifyChain` with the admin
# token answer; the same VerifyChain without the token is UNAUTHENTICATED.
# Skipped (exit 77) when scripts/install-grpcurl could not fetch grpcurl.
#   readme_grpcurl_test.sh <repo-root> <build-dir>
set -euo pipefail
root=${1:?usage: readme_grpcurl_test.sh <repo-root> <build-dir>}
build=${2:?}
grpcurl_bin=$root/.tools/bin
if [[ ! -x "$grpcurl_bin/grpcurl" ]]; then
  echo "skipped: $grpcurl_bin/grpcurl is not installed (scripts/install-grpcurl)"
  exit 77
fi
unset FERRY_CACERT FERRY_TOKEN FERRY_TOKEN_FILE
url=$(cat "${FERRY_TEST_PG_STATE:?}/url")
db="readme_grpcurl_$$"
work=$(mktemp -d /tmp/ferry-readme-grpcurl.XXXXXX)
pid="" planner_pid=""
cleanup() {
  if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [[ -n "$planner_pid" ]]; then kill "$planner_pid" 2>/dev/null || true; wait "$planner_pid" 2>/dev/null || true; fi
  psql -q "$url" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -n 20 "$work/audit.log" >&2 || true; exit 1; }
psql -q "$url" -c "CREATE DATABASE $db" >/dev/null

# The README's commands name .ferry/ in the clone and port 7004.
"$root/scripts/ferry-state" "$work/.ferry" >/dev/null
port=$("$root/scripts/free-port")
mapfile -t flags < <("$root/scripts/ferry-state" --flags "$work/.ferry" audit)
"$build/bin/ferry-audit" --database-url="${url%/*}/$db" --grpc-address="127.0.0.1:$port" \
  --metrics-address=127.0.0.1:0 --checkpoint-key-file="$work/checkpoint.pem" "${flags[@]}" >"$work/audit.log" 2>&1 &
pid=$!
"$root/scripts/grpc-health" "$build/pyclient" 60 -cacert "$work/.ferry/tls/ca.pem" "127.0.0.1:$port" ||
  fail "ferry-audit did not answer SERVING over TLS"

# The planner makes the bootstrap admin token (.ferry/admin.token) exist.
planner_port=$("$root/scripts/free-port")
mapfile -t planner_flags < <("$root/scripts/ferry-state" --flags "$work/.ferry" planner)
"$build/bin/ferry-planner" --database-url="${url%/*}/$db" --grpc-address="127.0.0.1:$planner_port" \
  --metrics-address=127.0.0.1:0 --audit-address="127.0.0.1:$port" "${planner_flags[@]}" >"$work/planner.log" 2>&1 &
planner_pid=$!
"$root/scripts/grpc-health" "$build/pyclient" 60 -cacert "$work/.ferry/tls/ca.pem" "127.0.0.1:$planner_port" ||
  { tail -n 20 "$work/planner.log" >&2; fail "ferry-planner did not answer SERVING over TLS"; }

readme_line() {  # the first README line that runs grpcurl and ends with $1
  local line
  line=$(grep -E "^grpcurl .*$1\$" "$root/README.md" | head -n 1)
  [[ -n "$line" ]] || fail "README.md has no grpcurl line ending with '$1'"
  echo "${line//127.0.0.1:7004/127.0.0.1:$port}"
}
run() { (cd "$work" && PATH="$grpcurl_bin:$PATH" bash -c "$1" 2>&1); }

list=$(readme_line " list")
[[ "$list" == *-cacert* && "$list" == *"authorization: Bearer"* ]] || fail "the README's list line has no -cacert and token: $list"
out=$(run "$list") || fail "\`$list\` failed: $out"
[[ "$out" == *ferry.v1.Audit* ]] || fail "\`$list\` did not list ferry.v1.Audit: $out"
echo "ok: $list"

verify=$(readme_line "ferry.v1.Audit/VerifyChain")
out=$(run "$verify") || fail "\`$verify\` failed: $out"
[[ "$out" == *'"ok": true'* ]] || fail "\`$verify\` did not answer ok: $out"
echo "ok: $verify"

anonymous=$(sed -E 's/ -H "authorization: Bearer [^"]*"//' <<<"$verify")
[[ "$anonymous" != "$verify" ]] || fail "could not take the token out of: $verify"
if out=$(run "$anonymous"); then fail "\`$anonymous\` succeeded without a token: $out"; fi
[[ "$out" == *Unauthenticated* || "$out" == *UNAUTHENTICATED* ]] || fail "\`$anonymous\` was not refused UNAUTHENTICATED: $out"
echo "ok: without the token: $(head -n 1 <<<"$out")"
