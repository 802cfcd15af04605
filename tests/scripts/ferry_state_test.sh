#!/usr/bin/env bash
# scripts/ferry-state, the part of `make up` that makes its secrets and
# policy: a first run creates the certificates, token.key (64 hex digits),
# admin.token (ferry_<12 hex>_<43 base64url>, 0600) and access-policy.yaml
# (user:admin bound to admin); a second run changes nothing, keeps an edited
# policy, narrows a token file others may read to 0600 without changing it,
# and remakes only a file that was deleted.
#   ferry_state_test.sh <repo-root>
set -euo pipefail
root=${1:?usage: ferry_state_test.sh <repo-root>}
work=$(mktemp -d /tmp/ferry-state-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
state=$work/.ferry
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
mode() { stat -c %a "$1"; }
snapshot() { (cd "$state" && find . -type f | sort | xargs sha256sum && find . -type f | sort | xargs stat -c '%n %a'); }

out=$("$root/scripts/ferry-state" "$state")
for f in token.key admin.token access-policy.yaml; do
  [[ -f "$state/$f" ]] || fail "$f was not created"
  [[ "$out" == *"created $state/$f"* ]] || fail "the first run did not say it created $f: $out"
done
for f in ca.pem ca-key.pem audit.pem audit-key.pem planner.pem planner-key.pem deployer.pem deployer-key.pem \
         repo-watcher.pem repo-watcher-key.pem; do
  [[ -s "$state/tls/$f" ]] || fail "tls/$f was not created"
done
[[ "$(mode "$state/token.key")" == 600 ]] || fail "token.key has mode $(mode "$state/token.key"), expected 600"
[[ "$(mode "$state/admin.token")" == 600 ]] || fail "admin.token has mode $(mode "$state/admin.token"), expected 600"
[[ "$(mode "$state/access-policy.yaml")" == 644 ]] || fail "access-policy.yaml has mode $(mode "$state/access-policy.yaml")"
[[ "$(mode "$state/tls/planner-key.pem")" == 600 ]] || fail "tls/planner-key.pem is not 0600"
[[ "$(cat "$state/token.key")" =~ ^[0-9a-f]{64}$ ]] || fail "token.key is not 64 hex digits: $(wc -c <"$state/token.key") bytes"
[[ "$(cat "$state/admin.token")" =~ ^ferry_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$ ]] ||
  fail "admin.token is not ferry_<12 hex>_<43 base64url>"
# The 43 characters are 32 bytes.
secret=$(cut -d_ -f3- "$state/admin.token")
[[ $(printf '%s=' "$secret" | basenc --base64url -d | wc -c) == 32 ]] || fail "admin.token's secret is not 32 bytes"
/usr/bin/python3 - "$state/access-policy.yaml" <<'PY' || fail "access-policy.yaml does not bind user:admin to admin"
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
assert set(doc) == {"bindings"}, doc
assert doc["bindings"] == [{"subjects": ["user:admin"], "role": "admin"}], doc["bindings"]
PY
# Its commented examples are a valid policy once uncommented.
sed -E 's/^(\s*)# ?(- subjects|  role|  environments|  applications)/\1\2/; s/^# (approvals|oidc|  prod|    required|    distinct|  - issuer|    audience|    jwks_url|    username|    groups|    clock)/\1/' \
  "$state/access-policy.yaml" >"$work/uncommented.yaml"
/usr/bin/python3 - "$work/uncommented.yaml" <<'PY' || fail "the policy's examples do not uncomment into the documented shape"
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
assert set(doc) == {"bindings", "approvals", "oidc"}, doc
assert len(doc["bindings"]) == 4 and all(set(b) <= {"subjects", "role", "environments", "applications"} for b in doc["bindings"])
assert {b["role"] for b in doc["bindings"]} == {"admin", "viewer", "operator", "approver"}
assert doc["approvals"]["prod"]["required"] == 2
assert doc["oidc"][0]["issuer"].startswith("https://") and doc["oidc"][0]["audience"] == "ferry"
PY

# A second run changes nothing and says nothing about creating.
before=$(snapshot)
out=$("$root/scripts/ferry-state" "$state")
[[ "$out" != *created* ]] || fail "the second run created something: $out"
[[ "$(snapshot)" == "$before" ]] || fail "the second run changed the state: $(diff <(echo "$before") <(snapshot))"

# An edited policy is kept.
echo "# edited by the operator" >>"$state/access-policy.yaml"
"$root/scripts/ferry-state" "$state" >/dev/null
grep -q "edited by the operator" "$state/access-policy.yaml" || fail "an edited access-policy.yaml was overwritten"

# A token file others may read is narrowed, not rewritten.
token=$(cat "$state/admin.token")
chmod 644 "$state/admin.token"
"$root/scripts/ferry-state" "$state" >/dev/null 2>"$work/err"
[[ "$(mode "$state/admin.token")" == 600 ]] || fail "a world-readable admin.token was left $(mode "$state/admin.token")"
[[ "$(cat "$state/admin.token")" == "$token" ]] || fail "narrowing admin.token changed its content"
grep -q "admin.token was readable by others" "$work/err" || fail "narrowing admin.token was not reported"

# A deleted file is made again; the others stay.
key=$(cat "$state/token.key")
rm "$state/admin.token"
out=$("$root/scripts/ferry-state" "$state")
[[ "$out" == *"created $state/admin.token"* ]] || fail "a deleted admin.token was not made again: $out"
[[ "$(cat "$state/admin.token")" != "$token" ]] || fail "the new admin.token equals the old one"
[[ "$(cat "$state/token.key")" == "$key" ]] || fail "token.key changed when admin.token was remade"

# No temporary files are left behind.
left=$(find "$state" -name '*.??????' -o -name '*.tmp')
[[ -z "$left" ]] || fail "temporary files left: $left"

if ((failures)); then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "ok: ferry-state creates the state with the right modes and keeps it"
