#!/usr/bin/python3
"""Every metric the Grafana dashboard queries is one the services register.

usage: dashboard_metrics_test.py <repo-root> [<metrics-dump>...]

Reads helm/ferry/dashboards/ferry.json, takes every ferry_* metric name from
its queries (histogram suffixes _bucket/_sum/_count removed), and checks that
each is registered in the C++ sources (a prometheus-cpp .Name("...") call
under common/ or services/). With metrics dumps (text scraped from /metrics),
it also checks that each registered family named in the dumps matches."""
import json
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
dash = json.loads((root / "helm/ferry/dashboards/ferry.json").read_text())
wanted = set()
for panel in dash["panels"]:
    for target in panel.get("targets", []):
        for name in re.findall(r"\bferry_[a-z0-9_]+", target["expr"]):
            wanted.add(re.sub(r"_(bucket|sum|count)$", "", name))

registered = set()
for src in list((root / "common").rglob("*.cc")) + list((root / "services").rglob("*.cc")) + \
        list((root / "common").rglob("*.h")) + list((root / "services").rglob("*.h")):
    text = src.read_text(errors="replace")
    registered.update(re.findall(r'\.Name\(\s*"(ferry_[a-z0-9_]+)"', text))

missing = sorted(wanted - registered)
print("dashboard metrics: %d, registered in code: %d" % (len(wanted), len(registered)))
if missing:
    print("FAIL: the dashboard queries metrics no service registers: %s" % ", ".join(missing))
    sys.exit(1)

for dump in sys.argv[2:]:
    text = pathlib.Path(dump).read_text()
    exported = set(re.findall(r"^# TYPE (ferry_[a-z0-9_]+) ", text, re.M))
    unknown = sorted(exported - registered)
    if unknown:
        print("FAIL: %s exports metrics the source scan does not know: %s" % (dump, ", ".join(unknown)))
        sys.exit(1)
print("PASS")
