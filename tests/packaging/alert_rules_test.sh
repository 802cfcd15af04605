#!/usr/bin/env bash
# Ferry's alert rules (helm/ferry/files/ferry-alerts.rules.yml) with
# Debian's promtool: the file is valid, every alert has a unit test that
# expects it to fire (tests/packaging/ferry-alerts.test.yml), and the tests pass.
#   alert_rules_test.sh <repo-root>
set -euo pipefail
root=${1:?}
rules="$root/helm/ferry/files/ferry-alerts.rules.yml"
tests="$root/tests/packaging/ferry-alerts.test.yml"
promtool check rules "$rules"
/usr/bin/python3 - "$rules" "$tests" "$root" <<'PY'
import pathlib, re, sys, yaml
rules = yaml.safe_load(open(sys.argv[1]))
tests = yaml.safe_load(open(sys.argv[2]))
alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
fired = {t["alertname"] for case in tests["tests"] for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
quiet = {t["alertname"] for case in tests["tests"] for t in case.get("alert_rule_test", []) if not t.get("exp_alerts")}
missing = [a for a in alerts if a not in fired or a not in quiet]
if missing:
    sys.exit("FAIL: alerts without a test that they fire and one that they stay quiet: " + ", ".join(missing))
print("%d alerts, each tested firing and quiet" % len(alerts))
# Every metric a rule reads is one a service registers (as the dashboard check).
root = pathlib.Path(sys.argv[3])
registered = set()
for src in [*(root / "common").rglob("*.[ch]*"), *(root / "services").rglob("*.[ch]*")]:
    registered.update(re.findall(r'\.Name\(\s*"(ferry_[a-z0-9_]+)"', src.read_text(errors="replace")))
used = {m for g in rules["groups"] for r in g["rules"] for m in re.findall(r"\bferry_[a-z0-9_]+", r["expr"])}
unknown = sorted(used - registered)
if unknown:
    sys.exit("FAIL: the rules read metrics no service registers: " + ", ".join(unknown))
print("%d metrics read by the rules, all registered" % len(used))
PY
promtool test rules "$tests"
