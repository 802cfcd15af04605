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
  db_roles_check.py compose     (docker-compose config on stdin) each Ferry
      service logs in as ferry_<service> with a passfile from a volume no
      other service mounts, no URL carries a password, `migrate` runs every
      --migrate-only as ferry_migrator before the services, PostgreSQL's
      password comes from a file, and only postgres, db-roles and certs mount
      the passwords' volume.
Exits 1 naming each problem."""
import sys

import yaml

COMPONENTS = ("repo-watcher", "planner", "deployer", "audit", "notifier")
problems = []


def secret_refs(container):
    out = {}
    for e in container.get("env") or []:
        ref = (e.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            out[e["name"]] = (ref["name"], ref["key"])
    return out


def check_compose(doc):
    from urllib.parse import parse_qs, urlparse
    services = doc.get("services") or {}

    def vols(svc):
        out = []
        for v in svc.get("volumes") or []:
            if isinstance(v, str):
                parts = v.split(":")
                out.append((parts[0], parts[1]))
            else:
                out.append((v.get("source"), v.get("target")))
        return out

    def url_of(svc):
        return (svc.get("environment") or {}).get("FERRY_DATABASE_URL", "")

    pg = services.get("postgres") or {}
    env = pg.get("environment") or {}
    if "POSTGRES_PASSWORD" in env or "POSTGRES_PASSWORD_FILE" not in env:
        problems.append("postgres: the superuser's password is not from a file (POSTGRES_PASSWORD_FILE)")
    admin_dir = env.get("POSTGRES_PASSWORD_FILE", "/nonexistent").rsplit("/", 1)[0]
    admin_vol = next((src for src, tgt in vols(pg) if tgt == admin_dir), None)
    for name, svc in services.items():
        if name not in ("postgres", "db-roles", "certs") and any(src == admin_vol for src, _ in vols(svc)):
            problems.append(f"{name}: mounts the database passwords' volume {admin_vol!r}")
    passfile_vols = {}
    for name, role in [("migrate", "migrator")] + [(c, c.replace("-", "_")) for c in COMPONENTS]:
        svc = services.get(name)
        if svc is None:
            problems.append(f"no {name} service")
            continue
        u = urlparse(url_of(svc))
        if u.username != f"ferry_{role}" or u.password:
            problems.append(f"{name}: FERRY_DATABASE_URL logs in as {u.username!r} (password in URL: {bool(u.password)})")
        passfile = (parse_qs(u.query).get("passfile") or [""])[0]
        vol = next((src for src, tgt in vols(svc) if passfile.startswith(tgt.rstrip("/") + "/")), None)
        if vol is None:
            problems.append(f"{name}: passfile {passfile!r} is not in a mounted volume")
        passfile_vols[name] = vol
    for name, vol in passfile_vols.items():
        for other, svc in services.items():
            if other not in (name, "certs") and vol and any(src == vol for src, _ in vols(svc)):
                problems.append(f"{other}: mounts {name}'s passfile volume {vol!r}")
    mig = services.get("migrate") or {}
    script = " ".join(mig.get("entrypoint") or []) + " ".join(mig.get("command") or [])
    if "--migrate-only" not in script:
        problems.append("migrate: does not run --migrate-only")
    for c in COMPONENTS:
        dep = (services.get(c) or {}).get("depends_on") or {}
        if (dep.get("migrate") or {}).get("condition") != "service_completed_successfully":
            problems.append(f"{c}: does not wait for migrate to complete")
    if ((mig.get("depends_on") or {}).get("db-roles") or {}).get("condition") != "service_completed_successfully":
        problems.append("migrate: does not wait for db-roles to complete")
    roles = services.get("db-roles") or {}
    if not any(tgt.endswith("db-roles.sql") and src.endswith("helm/ferry/files/db-roles.sql") for src, tgt in vols(roles)):
        problems.append("db-roles: does not mount helm/ferry/files/db-roles.sql")


def main():
    mode = sys.argv[1]
    if mode == "compose":
        check_compose(yaml.safe_load(sys.stdin))
        for p in problems:
            print(f"db roles: {p}", file=sys.stderr)
        sys.exit(1 if problems else 0)
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
