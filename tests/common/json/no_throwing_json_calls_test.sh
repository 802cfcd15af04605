#!/bin/sh
# The check itself: it fails on each kind of direct call, names the file and
# line, passes on clean code, comments and common/json, and honours the
# allowlist.
set -u
check=$(dirname "$0")/no_throwing_json_calls.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

tree() {  # a fresh tree with one clean file
  rm -rf "$tmp/root" && mkdir -p "$tmp/root/common/json" "$tmp/root/services/x"
  printf '%s\n' '#include "common/json/json.h"' 'auto j = ferry::ParseJson(text);' '// j.dump() in a comment' \
    > "$tmp/root/services/x/ok.cc"
  printf '%s\n' 'return value.dump(indent);' 'nlohmann::json::parse(text);' > "$tmp/root/common/json/json.cc"
  : > "$tmp/allow"
}

expect() {  # expect <pass|fail> <label> [<text that the output must hold>]
  out=$("$check" "$tmp/root" "$tmp/allow" 2>&1)
  rc=$?
  if [ "$1" = pass ] && [ $rc -ne 0 ]; then echo "FAIL: $2: refused clean code: $out"; fail=1; fi
  if [ "$1" = fail ] && [ $rc -eq 0 ]; then echo "FAIL: $2: not caught: $out"; fail=1; fi
  if [ $# -ge 3 ] && ! printf '%s' "$out" | grep -qF "$3"; then echo "FAIL: $2: output lacks '$3': $out"; fail=1; fi
}

tree; expect pass "clean tree"
for call in 'auto j = json::parse(text);' 'auto j = nlohmann::json::parse(text, nullptr, false);' \
            'm.set_json(object.dump());' 'out = p->dump(2);' 'auto j = "{}"_json;' 'auto j = json::from_cbor(bytes);'; do
  tree; printf '%s\n' "$call" > "$tmp/root/services/x/bad.cc"
  expect fail "$call" "services/x/bad.cc:1:"
done
tree; mkdir -p "$tmp/root/common/logging"; printf '%s\n' 'x = j.dump();' > "$tmp/root/common/logging/bad.h"
expect fail "a header in common/" "bad.h"
tree; printf '%s\n' 'x = j.dump();' > "$tmp/root/services/x/listed.cc"; echo "services/x/listed.cc  # being split" > "$tmp/allow"
expect pass "an allowlisted file"

[ $fail -eq 0 ] && echo "ok"
exit $fail
