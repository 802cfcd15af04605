#!/usr/bin/python3
"""Reads rendered chart objects (stdin, multi-document YAML) and checks the
per-service database roles (docs/operations.md, "Database roles"):
  db_roles_check.py bundled     the bundled PostgreSQL: every Ferry pod's
      service container gets only <component>-url of the chart's Secret, its
      `migrate` init container only migrator-url with --migrate-only; no Ferry
      pod gets the administrator's `password`; the PostgreSQL pod runs
      db-roles.sql (the chart's copy of helm/ferry/files/db-roles.sql).
  db_roles_check.py external SECRET   the same with keys from SECRET.
  db_roles_check.py single SECRET KEY one URL for all, no init container.
Exits 1 naming each problem."""
import sys

import yaml

COMPONENTS = ("repo-watcher", "planner", "deployer", "audit")
problems = []


def secret_refs(container):
    out = {}
    for e in container.get("env") or []:
        ref = (e.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            out[e["name"]] = (ref["name"], ref["key"])
    return out


def main():
    mode = sys.argv[1]
    objs = [o for o in yaml.safe_load_all(sys.stdin) if o]
    deps = {o["metadata"]["labels"].get("app.kubernetes.io/component"): o for o in objs if o["kind"] == "Deployment"}
    for comp in COMPONENTS:
        d = deps.get(comp)
        if d is None:
            problems.append(f"no {comp} Deployment")
            continue
        pod = d["spec"]["template"]["spec"]
        main_c = pod["containers"][0]
        inits = pod.get("initContainers") or []
        url = secret_refs(main_c).get("FERRY_DATABASE_URL")
        all_refs = [r for c in pod["containers"] + inits for r in secret_refs(c).values()]
        if mode == "single":
            want = (sys.argv[2], sys.argv[3])
            if url != want:
                problems.append(f"{comp}: FERRY_DATABASE_URL from {url}, want {want}")
            if any(c["name"] == "migrate" for c in inits):
                problems.append(f"{comp}: a migrate init container with one URL")
            continue
        secret = "ferry-postgresql" if mode == "bundled" else sys.argv[2]
        if url != (secret, f"{comp}-url"):
            problems.append(f"{comp}: FERRY_DATABASE_URL from {url}, want ({secret!r}, '{comp}-url')")
        for r in secret_refs(main_c).values():
            if r[0] == secret and r[1] != f"{comp}-url":
                problems.append(f"{comp}: the service container also gets {r}")
        migrate = [c for c in inits if c["name"] == "migrate"]
        if len(migrate) != 1:
            problems.append(f"{comp}: no migrate init container")
        else:
            m = migrate[0]
            if "--migrate-only" not in (m.get("args") or []) or m.get("command") != [f"/usr/local/bin/ferry-{comp}"]:
                problems.append(f"{comp}: migrate init container does not run ferry-{comp} --migrate-only")
            if secret_refs(m).get("FERRY_DATABASE_URL") != (secret, "migrator-url"):
                problems.append(f"{comp}: migrate init container's URL is {secret_refs(m).get('FERRY_DATABASE_URL')}")
        if any(r == (secret, "password") or r[1].endswith("-password") for r in all_refs):
            problems.append(f"{comp}: a Ferry pod gets a database password key")
    if mode == "bundled":
        sts = [o for o in objs if o["kind"] == "StatefulSet"]
        cms = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ConfigMap"}
        if not sts:
            problems.append("no PostgreSQL StatefulSet")
        else:
            pod = sts[0]["spec"]["template"]["spec"]
            roles = [c for c in pod["containers"] if c["name"] == "roles"]
            if not roles or "db-roles.sql" not in " ".join(roles[0]["command"]):
                problems.append("the PostgreSQL pod has no roles container running db-roles.sql")
            with open(sys.argv[2] if len(sys.argv) > 2 else "/dev/null") as f:
                source = f.read()
            cm = cms.get("ferry-postgresql-roles", {}).get("data", {}).get("db-roles.sql", "")
            if cm.strip() != source.strip():
                problems.append("the roles ConfigMap is not helm/ferry/files/db-roles.sql")
        secret = next((o for o in objs if o["kind"] == "Secret" and o["metadata"]["name"] == "ferry-postgresql"), None)
        if secret is None or "url" in secret.get("data", {}):
            problems.append("the chart's Secret still has a superuser `url`")
    for p in problems:
        print(f"db roles: {p}", file=sys.stderr)
    sys.exit(1 if problems else 0)


main()
