#!/usr/bin/env bash
# scripts/ferry-rpc (and so tests/integration/reflection_client.py) and
# scripts/grpc-health against a real TLS gRPC server that wants a bearer
# token (tests/scripts/fake_tls_server.py, certificates from
# scripts/ferry-certs): grpcurl's flags -cacert, -cert/-key, -servername,
# -authority, -H (sent on reflection too) and -plaintext; the defaults
# $FERRY_CACERT, $FERRY_TOKEN and $FERRY_TOKEN_FILE; and the older call form.
# When .tools/bin/grpcurl is installed, the same calls through grpcurl.
#   ferry_rpc_tls_test.sh <repo-root> <build-dir>
set -euo pipefail
root=${1:?usage: ferry_rpc_tls_test.sh <repo-root> <build-dir>}
build=${2:?}
stubs=$build/pyclient
export FERRY_BUILD_DIR=$build
unset FERRY_CACERT FERRY_TOKEN FERRY_TOKEN_FILE
work=$(mktemp -d /tmp/ferry-rpc-tls-test.XXXXXX)
pids=()
cleanup() {
  for p in ${pids[@]+"${pids[@]}"}; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

"$root/scripts/ferry-certs" "$work/tls" >/dev/null
"$root/scripts/ferry-certs" "$work/other-ca" >/dev/null  # a CA the server's certificate is not from
ca=$work/tls/ca.pem
token=ferry_0123456789ab_secretsecretsecretsecretsecretsecretsecre
printf '%s\n' "$token" >"$work/token"

# start_server <log> [--require-client-cert]; sets server_port. It runs in
# this shell (not in $(...)), so that the server's pid reaches `pids` and the
# cleanup stops it: from a subshell every server outlived the test.
server_port=""
start_server() {
  local log=$1 port=""
  shift
  /usr/bin/python3 "$root/tests/scripts/fake_tls_server.py" "$stubs" "$work/tls/planner.pem" \
    "$work/tls/planner-key.pem" "$ca" "$token" "$log" "$@" >"$log.port" 2>"$log.err" &
  pids+=($!)
  for _ in $(seq 100); do
    port=$(head -n 1 "$log.port" 2>/dev/null || true)
    [[ -n "$port" ]] && break
    sleep 0.05
  done
  [[ -n "$port" ]] || { cat "$log.err" >&2; echo "FAIL: the test server did not start" >&2; exit 1; }
  server_port=$port
}
start_server "$work/calls"
port=$server_port
target=127.0.0.1:$port

# expect_ok <what> <output pattern> <command...>
expect_ok() {
  local what=$1 want=$2 out
  shift 2
  if ! out=$("$@" 2>&1); then fail "$what: exit status $?: $out"; return; fi
  [[ "$out" == *$want* ]] || fail "$what: expected '$want' in: $out"
}
# expect_error <what> <output pattern> <command...>
expect_error() {
  local what=$1 want=$2 out
  shift 2
  if out=$("$@" 2>&1); then fail "$what: succeeded, expected an error: $out"; return; fi
  [[ "$out" == *$want* ]] || fail "$what: expected '$want' in: $out"
}
last_authorization() { /usr/bin/python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[-1])[sys.argv[2]])' "$work/calls" "${1:-authorization}"; }
calls() { wc -l <"$work/calls"; }

rpc=("$root/scripts/ferry-rpc")
bearer="authorization: Bearer $token"

# grpcurl's flags.
expect_ok "list with -cacert and -H" "grpc.health.v1.Health" "${rpc[@]}" -cacert "$ca" -H "$bearer" "$target" list
[[ "$(last_authorization)" == "Bearer $token" ]] || fail "the -H header was not sent on the reflection request"
expect_ok "call with -d" '"status": "SERVING"' \
  "${rpc[@]}" -cacert "$ca" -H "$bearer" -d '{}' "$target" grpc.health.v1.Health/Check
[[ "$(last_authorization)" == "Bearer $token" ]] || fail "the -H header was not sent on the call"
expect_ok "--flag=value spelling" '"status": "SERVING"' \
  "${rpc[@]}" --cacert="$ca" --H="$bearer" -d='{}' "$target" grpc.health.v1.Health/Check
expect_ok "-d @ reads stdin" '"status": "SERVING"' \
  bash -c 'echo "{}" | "$@"' _ "${rpc[@]}" -cacert "$ca" -H "$bearer" -d @ "$target" grpc.health.v1.Health/Check
expect_ok "two -H headers" "grpc.health.v1.Health" \
  "${rpc[@]}" -cacert "$ca" -H "x-request-id: 7" -H "$bearer" "$target" list
expect_ok "-servername naming the certificate" "grpc.health.v1.Health" \
  "${rpc[@]}" -cacert "$ca" -H "$bearer" -servername ferry-planner "$target" list
expect_error "-servername naming another server" "UNAVAILABLE" \
  "${rpc[@]}" -cacert "$ca" -H "$bearer" -servername ferry-audit "$target" list
expect_ok "-authority naming the certificate" "grpc.health.v1.Health" \
  "${rpc[@]}" -cacert "$ca" -H "$bearer" -authority ferry-planner "$target" list
expect_error "a CA that did not sign the server's certificate" "UNAVAILABLE" \
  "${rpc[@]}" -cacert "$work/other-ca/ca.pem" -H "$bearer" "$target" list
expect_error "-plaintext against TLS" "UNAVAILABLE" "${rpc[@]}" -plaintext -H "$bearer" "$target" list
expect_error "no token" "UNAUTHENTICATED" "${rpc[@]}" -cacert "$ca" "$target" list
expect_error "an unknown option" "unsupported option -insecure" "${rpc[@]}" -insecure "$target" list
expect_error "-cert without -key" "-cert and -key go together" "${rpc[@]}" -cacert "$ca" -cert "$ca" "$target" list
expect_error "a CA file that is missing" "ERROR" "${rpc[@]}" -cacert "$work/missing.pem" "$target" list

# Defaults from the environment, and the older call form.
expect_ok "FERRY_CACERT and FERRY_TOKEN" "grpc.health.v1.Health" \
  env FERRY_CACERT="$ca" FERRY_TOKEN="$token" "${rpc[@]}" "$target" list
[[ "$(last_authorization)" == "Bearer $token" ]] || fail "FERRY_TOKEN was not sent as a bearer token"
expect_ok "FERRY_TOKEN_FILE" "grpc.health.v1.Health" \
  env FERRY_CACERT="$ca" FERRY_TOKEN_FILE="$work/token" "${rpc[@]}" "$target" list
[[ "$(last_authorization)" == "Bearer $token" ]] || fail "FERRY_TOKEN_FILE was not sent as a bearer token"
expect_ok "the older form (method with a dot, request after it)" '"status": "SERVING"' \
  env FERRY_CACERT="$ca" FERRY_TOKEN="$token" "${rpc[@]}" "$target" grpc.health.v1.Health.Check '{}'
expect_error "an explicit -H authorization wins over FERRY_TOKEN" "UNAUTHENTICATED" \
  env FERRY_CACERT="$ca" FERRY_TOKEN="$token" "${rpc[@]}" -H "authorization: Bearer wrong" "$target" list
expect_error "-plaintext wins over FERRY_CACERT" "UNAVAILABLE" \
  env FERRY_CACERT="$ca" FERRY_TOKEN="$token" "${rpc[@]}" -plaintext "$target" list

# Mutual TLS: a server that demands a client certificate from the suite's CA.
start_server "$work/mtls-calls" --require-client-cert
mtls_port=$server_port
expect_error "no client certificate where one is required" "UNAVAILABLE" \
  "${rpc[@]}" -cacert "$ca" -H "$bearer" "127.0.0.1:$mtls_port" list
expect_ok "-cert and -key" "grpc.health.v1.Health" "${rpc[@]}" -cacert "$ca" -H "$bearer" \
  -cert "$work/tls/deployer.pem" -key "$work/tls/deployer-key.pem" "127.0.0.1:$mtls_port" list
peer=$(/usr/bin/python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[-1])["peer"])' "$work/mtls-calls")
[[ "$peer" == spiffe://ferry/deployer ]] || fail "the server saw client certificate '$peer', expected spiffe://ferry/deployer"

# grpc-health over TLS.
expect_ok "grpc-health -cacert" "" "$root/scripts/grpc-health" "$stubs" 5 -cacert "$ca" "$target"
expect_ok "grpc-health with FERRY_CACERT and -servername" "" \
  env FERRY_CACERT="$ca" "$root/scripts/grpc-health" "$stubs" 5 -servername ferry-planner "$target"
expect_error "grpc-health in plaintext against TLS" "is not SERVING" "$root/scripts/grpc-health" "$stubs" 1 "$target"
expect_error "grpc-health with the wrong server name" "is not SERVING" \
  "$root/scripts/grpc-health" "$stubs" 1 -cacert "$ca" -servername ferry-audit "$target"

# grpcurl itself, when scripts/install-grpcurl could fetch it.
grpcurl=$root/.tools/bin/grpcurl
if [[ -x "$grpcurl" ]]; then
  before=$(calls)
  expect_ok "grpcurl -cacert -H list" "grpc.health.v1.Health" "$grpcurl" -cacert "$ca" -H "$bearer" "$target" list
  (($(calls) > before)) && [[ "$(last_authorization)" == "Bearer $token" ]] ||
    fail "grpcurl did not send -H on reflection"
  expect_ok "grpcurl call" '"status": "SERVING"' "$grpcurl" -cacert "$ca" -H "$bearer" "$target" grpc.health.v1.Health/Check
  expect_ok "grpcurl -cert -key" "grpc.health.v1.Health" "$grpcurl" -cacert "$ca" -H "$bearer" \
    -cert "$work/tls/deployer.pem" -key "$work/tls/deployer-key.pem" "127.0.0.1:$mtls_port" list
else
  echo "note: $grpcurl is not installed (scripts/install-grpcurl); grpcurl's own calls not checked"
fi

if ((failures)); then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "ok: ferry-rpc, reflection_client.py and grpc-health speak TLS with grpcurl's flags"
