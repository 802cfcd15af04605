#!/bin/sh
# Fails when C++ code in cli/, common/ or services/ calls nlohmann-json's throwing
# parse()/dump() (or a parsing literal or binary-format reader) directly,
# instead of ParseJson/DumpJson/DumpJsonLossy from common/json/json.h. One
# throw on a background thread ends the process.
#
# usage: no_throwing_json_calls.sh <repository root> [<allowlist file>]
# The allowlist names files (paths from the root, one a line, # comments)
# that may still make such calls until they are converted.
set -eu
root=$1
allowlist=${2:-$root/tests/common/json/throwing_json_allowlist.txt}
cd "$root"

allowed=$(mktemp)
trap 'rm -f "$allowed"' EXIT
if [ -f "$allowlist" ]; then
  sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$allowlist" > "$allowed"
fi

# json::parse( / nlohmann::json::parse(   .dump( / ->dump(   "..."_json
# json::from_cbor( and the other binary readers   json::accept( is not listed
# (it does not throw) but has no use here either.
pattern='json::parse[[:space:]]*\(|(\.|->)dump[[:space:]]*\(|"_json\b|json::from_(cbor|msgpack|ubjson|bson|bjdata)[[:space:]]*\('

found=$(find cli common services -type f \( -name '*.cc' -o -name '*.h' \) ! -path 'common/json/*' | sort |
  while read -r f; do
    if grep -qxF "$f" "$allowed"; then continue; fi
    # Skip whole-line comments; a call in code is what matters.
    grep -nE "$pattern" "$f" | grep -vE '^[0-9]+:[[:space:]]*//' | sed "s|^|$f:|" || true
  done)

if [ -n "$found" ]; then
  echo "Direct throwing nlohmann-json calls (use ParseJson/DumpJson/DumpJsonLossy from common/json/json.h):" >&2
  echo "$found" >&2
  exit 1
fi
echo "no direct throwing JSON calls in cli/, common/ and services/ (outside common/json and the allowlist)"
