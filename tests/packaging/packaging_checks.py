#!/usr/bin/python3
"""Checks on the rendered Helm chart and the compose file, for packaging_test.sh.

usage: packaging_checks.py <check> [options] < rendered.yaml

Checks (each exits 1 with one line per problem):
  service-accounts --release R [--deployer-token]
      one ServiceAccount per Deployment, named R-<component>, used by that
      Deployment alone; no Kubernetes API token mounted (ServiceAccount and
      pod) except the deployer's with --deployer-token.
  rbac [--expect-roles N]
      no "*" anywhere in a Role or ClusterRole rule; N roles rendered.
  tls [--bootstrap]
      every Deployment passes --tls-ca-file --tls-cert-file --tls-key-file
      --access-policy-file --token-key-file, each naming a file in a mounted
      Secret (ConfigMap for the policy) volume that provides it, no subPath;
      the planner also --bootstrap-admin-token-file with --bootstrap; no
      --insecure-* flag.
  insecure
      every Deployment passes --insecure-plaintext and --insecure-no-auth.
  cert-manager --release R --namespace NS
      one cert-manager Certificate per Deployment with URI SAN
      spiffe://ferry/<component>, DNS ferry-<component> and the Service's
      names, into the Secret that Deployment mounts for TLS.
  confinement --key secret|claim|ephemeral [--trusted] [--witness CLAIM]
              [--repo-secrets SECRET] [--planner-secrets SECRET] [--workload-user U]
      (#17) audit: --checkpoint-key-file names a key that outlives the pod (a
      Secret file in a writable emptyDir, so that <file>.pub can be written,
      or a directory on a PersistentVolumeClaim), or --trial-ephemeral-key
      alone; --trusted-checkpoint-keys names a read-only Secret/ConfigMap
      directory mount (only with --trusted); --checkpoint-witness-dir a
      writable mount of the claim CLAIM (only with --witness). repo-watcher:
      --secrets-dir is the whole Secret SECRET mounted read-only, no subPath
      (absent without --repo-secrets); --secret-env-prefix=FERRY_SECRET_.
      planner: the same with --planner-secrets (Git host API tokens).
      deployer: --allowed-roots each beneath a writable volume, never /;
      --workload-user U (absent without).
  wiring --namespace NS --release R [--target-namespaces A,B] [--cluster-rules]
      (#18; the objects as a real API server stored them after `helm install`,
      with the namespace's Secrets, ConfigMaps, claims and ServiceAccounts)
      every peer address a service is given (--audit-address,
      --repo-watcher-address, --deployer-address, --planner-address) names a
      Service of NS (short or qualified name) on a port whose target is the
      gRPC port the peer's pods listen on, and that Service selects that
      peer's pods and no other; every Service selects one Deployment's pods
      and targets ports they declare; every Secret, ConfigMap, claim and key
      a pod mounts or reads exists (unless optional); every pod's
      ServiceAccount exists in NS; Roles and RoleBindings only in the target
      namespaces (NS when none), binding only R-deployer of NS, to a Role of
      their own namespace; no ClusterRole unless --cluster-rules; no "*".
  compose
      (the compose file, as `docker-compose config` prints it or raw) a
      one-shot `certs` service writes a named volume with the compose names
      as extra SANs; every Ferry service waits for it to complete, mounts
      the volume read-only and passes the TLS and access flags naming files
      in it; only `certs` mounts the CA's volume. (#17) the audit key and
      witness are in named volumes of their own (not the database's); the
      repo-watcher's --secrets-dir is a read-only named volume holding nothing
      else (not the auth volume) that `certs` prepares; the deployer's
      --allowed-roots are beneath a writable named volume.
"""
import argparse
import posixpath
import sys

import yaml

FLAGS = ["--tls-ca-file", "--tls-cert-file", "--tls-key-file", "--access-policy-file", "--token-key-file"]
INSECURE = ["--insecure-plaintext", "--insecure-no-auth"]
problems = []


def problem(msg):
    problems.append(msg)


def objects(text):
    out = []
    for d in yaml.safe_load_all(text):
        if not isinstance(d, dict) or not d.get("kind"):
            continue
        if d["kind"].endswith("List") and isinstance(d.get("items"), list):
            out.extend(i for i in d["items"] if isinstance(i, dict) and i.get("kind"))
        else:
            out.append(d)
    return out


def component_of(obj):
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/component", "")


def flag_values(args):
    out = {}
    for a in args:
        if a.startswith("--"):
            name, _, value = a.partition("=")
            out[name] = value
    return out


def deployments(objs):
    return [o for o in objs if o["kind"] == "Deployment"]


def check_service_accounts(objs, release, deployer_token):
    sas = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ServiceAccount"}
    deps = deployments(objs)
    if not deps:
        problem("no Deployment rendered")
    used = {}
    for d in deps:
        comp = component_of(d)
        pod = d["spec"]["template"]["spec"]
        want = f"{release}-{comp}"
        name = pod.get("serviceAccountName", "default")
        if name != want:
            problem(f"Deployment {d['metadata']['name']} runs as ServiceAccount {name!r}, not its own {want!r}")
        used.setdefault(name, []).append(comp)
        if name not in sas:
            problem(f"Deployment {d['metadata']['name']}: ServiceAccount {name!r} is not rendered")
            continue
        token = deployer_token and comp == "deployer"
        if sas[name].get("automountServiceAccountToken") is not token:
            problem(f"ServiceAccount {name}: automountServiceAccountToken is "
                    f"{sas[name].get('automountServiceAccountToken')!r}, want {token}")
        if pod.get("automountServiceAccountToken") is not token:
            problem(f"Deployment {d['metadata']['name']}: pod automountServiceAccountToken is "
                    f"{pod.get('automountServiceAccountToken')!r}, want {token}")
    for name, comps in used.items():
        if len(comps) > 1:
            problem(f"ServiceAccount {name} is shared by {', '.join(comps)}")
    extra = set(sas) - set(used)
    if extra:
        problem(f"ServiceAccounts no Deployment uses: {sorted(extra)}")


def check_rbac(objs, expect_roles):
    roles = [o for o in objs if o["kind"] in ("Role", "ClusterRole")]
    if expect_roles is not None and len(roles) != expect_roles:
        problem(f"{len(roles)} Role/ClusterRole rendered, want {expect_roles}")
    for r in roles:
        for i, rule in enumerate(r.get("rules") or []):
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                for v in rule.get(field) or []:
                    if "*" in v:
                        problem(f"{r['kind']} {r['metadata']['name']} rules[{i}].{field} has wildcard {v!r}")
            if not rule.get("verbs"):
                problem(f"{r['kind']} {r['metadata']['name']} rules[{i}] names no verbs")
    for b in (o for o in objs if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        for s in b.get("subjects") or []:
            if s.get("kind") == "ServiceAccount" and not s["name"].endswith("-deployer"):
                problem(f"{b['kind']} {b['metadata']['name']} binds {s['name']}, not the deployer's account")


def volume_source(pod, container, path):
    """(volume, mount) that provides the file `path` in the container, or a problem string."""
    for m in container.get("volumeMounts") or []:
        mp = m["mountPath"].rstrip("/")
        if posixpath.dirname(path) != mp:
            continue
        if m.get("subPath") or m.get("subPathExpr"):
            return f"{path}: mounted with subPath (updates would not be seen)"
        vol = next((v for v in pod.get("volumes") or [] if v["name"] == m["name"]), None)
        if vol is None:
            return f"{path}: mount {m['name']} has no volume"
        return vol, m
    return f"{path}: no volume is mounted at {posixpath.dirname(path)}"


def provides(vol, filename, kind):
    src = vol.get(kind)
    if src is None:
        return False
    items = src.get("items")
    if items is None:  # the whole object: any key may be the file
        return True
    return any(i["path"] == filename for i in items)


# The peers each service calls: each must be given its address, or it calls
# 127.0.0.1 (its own pod or container) and the call never arrives.
PEERS = {
    "planner": ("--repo-watcher-address", "--deployer-address"),
    "deployer": ("--planner-address", "--repo-watcher-address"),
    "notifier": ("--repo-watcher-address", "--planner-address"),
}


def check_peers(comp, flags, env):
    for f in PEERS.get(comp, ()):
        if not flags.get(f):
            problem(f"{comp}: does not pass {f} (it would call 127.0.0.1)")
    if comp != "audit" and not flags.get("--audit-address") and not env.get("FERRY_AUDIT_ADDRESS"):
        problem(f"{comp}: neither --audit-address nor FERRY_AUDIT_ADDRESS")


def check_tls(objs, bootstrap):
    deps = deployments(objs)
    if not deps:
        problem("no Deployment rendered")
    for d in deps:
        comp = component_of(d)
        pod = d["spec"]["template"]["spec"]
        c = pod["containers"][0]
        flags = flag_values(c.get("args") or [])
        check_peers(comp, flags, {e["name"]: e.get("value", "") for e in c.get("env") or []})
        want = list(FLAGS)
        if comp == "planner" and bootstrap:
            want.append("--bootstrap-admin-token-file")
        for f in INSECURE:
            if f in flags:
                problem(f"{comp}: passes {f}")
        for f in want:
            path = flags.get(f)
            if not path:
                problem(f"{comp}: does not pass {f}")
                continue
            found = volume_source(pod, c, path)
            if isinstance(found, str):
                problem(f"{comp}: {f}: {found}")
                continue
            vol, mount = found
            kind = "configMap" if f == "--access-policy-file" else "secret"
            if not provides(vol, posixpath.basename(path), kind):
                problem(f"{comp}: {f}={path}: volume {vol['name']} is not a {kind} providing {posixpath.basename(path)}")
            if not mount.get("readOnly"):
                problem(f"{comp}: {f}: mount {mount['name']} is not read-only")


def check_insecure(objs):
    if not deployments(objs):
        problem("no Deployment rendered")
    for d in deployments(objs):
        flags = flag_values(d["spec"]["template"]["spec"]["containers"][0].get("args") or [])
        for f in INSECURE:
            if f not in flags:
                problem(f"{component_of(d)}: devInsecure does not pass {f}")


def check_cert_manager(objs, release, namespace):
    if not deployments(objs):
        problem("no Deployment rendered")
    certs = [o for o in objs if o["kind"] == "Certificate" and o.get("apiVersion", "").startswith("cert-manager.io/")]
    by_comp = {component_of(c): c for c in certs}
    for d in deployments(objs):
        comp = component_of(d)
        cert = by_comp.get(comp)
        if cert is None:
            problem(f"no cert-manager Certificate for {comp}")
            continue
        spec = cert["spec"]
        if f"spiffe://ferry/{comp}" not in (spec.get("uris") or []):
            problem(f"Certificate for {comp}: no URI SAN spiffe://ferry/{comp} (uris: {spec.get('uris')})")
        svc = f"{release}-{comp}"
        for name in (f"ferry-{comp}", svc, f"{svc}.{namespace}", f"{svc}.{namespace}.svc"):
            if name not in (spec.get("dnsNames") or []):
                problem(f"Certificate for {comp}: no DNS SAN {name}")
        usages = set(spec.get("usages") or [])
        if not {"server auth", "client auth"} <= usages:
            problem(f"Certificate for {comp}: usages {sorted(usages)} lack server auth and client auth")
        if not spec.get("issuerRef", {}).get("name"):
            problem(f"Certificate for {comp}: no issuerRef.name")
        pod = d["spec"]["template"]["spec"]
        secrets = {v.get("secret", {}).get("secretName") for v in pod.get("volumes") or [] if v["name"] == "tls"}
        if spec.get("secretName") not in secrets:
            problem(f"Certificate for {comp} writes Secret {spec.get('secretName')!r}; the pod mounts {secrets}")


def mount_at(container, path):
    return next((m for m in container.get("volumeMounts") or [] if m["mountPath"].rstrip("/") == path.rstrip("/")), None)


def volume_named(pod, name):
    return next((v for v in pod.get("volumes") or [] if v["name"] == name), None)


def writable_mount_beneath(pod, container, path):
    """The writable emptyDir/PVC mount `path` is beneath, or None."""
    for m in container.get("volumeMounts") or []:
        mp = m["mountPath"].rstrip("/")
        if (path == mp or path.startswith(mp + "/")) and not m.get("readOnly"):
            vol = volume_named(pod, m["name"]) or {}
            if "emptyDir" in vol or "persistentVolumeClaim" in vol:
                return m
    return None


def check_confinement(objs, key, trusted, witness, repo_secrets, workload_user, planner_secrets=None):
    by = {component_of(d): d for d in deployments(objs)}
    for comp in ("audit", "repo-watcher", "deployer"):
        if comp not in by:
            problem(f"no {comp} Deployment rendered")
    if "audit" in by:
        pod = by["audit"]["spec"]["template"]["spec"]
        c = pod["containers"][0]
        flags = flag_values(c.get("args") or [])
        path = flags.get("--checkpoint-key-file")
        if key == "ephemeral":
            if "--trial-ephemeral-key" not in flags or path is not None:
                problem(f"audit: want --trial-ephemeral-key alone, got key file {path!r}")
        elif "--trial-ephemeral-key" in flags:
            problem("audit: passes --trial-ephemeral-key with a persistent key")
        elif not path:
            problem("audit: no --checkpoint-key-file")
        else:
            d = posixpath.dirname(path)
            dm = mount_at(c, d)
            dv = volume_named(pod, dm["name"]) if dm else None
            if key == "secret":
                # The Secret itself, read-only, as a directory (no subPath, no
                # writable emptyDir beside it: the service writes nothing there).
                if mount_at(c, path) is not None:
                    problem(f"audit: {path} is mounted as one file (subPath), not as the Secret's directory")
                elif dm is None or not dv or "secret" not in dv or not dm.get("readOnly") or dm.get("subPath"):
                    problem(f"audit: {d} is not a read-only mount of a Secret")
                elif not provides(dv, posixpath.basename(path), "secret"):
                    problem(f"audit: the Secret volume {dv['name']} does not provide {posixpath.basename(path)!r}")
            elif key == "claim":
                if dm is None or dm.get("readOnly"):
                    problem(f"audit: {d} (where the key is generated) is not a writable mount")
                elif not dv or "persistentVolumeClaim" not in dv:
                    problem(f"audit: {d} is not a PersistentVolumeClaim")
        tk = flags.get("--trusted-checkpoint-keys")
        if trusted:
            m = mount_at(c, tk or "/nonexistent")
            v = volume_named(pod, m["name"]) if m else None
            if not m or not m.get("readOnly") or m.get("subPath") or not v or not ("secret" in v or "configMap" in v):
                problem(f"audit: --trusted-checkpoint-keys={tk!r} is not a read-only Secret/ConfigMap directory")
        elif tk is not None:
            problem("audit: --trusted-checkpoint-keys without trusted keys configured")
        wd = flags.get("--checkpoint-witness-dir")
        if witness:
            m = mount_at(c, wd or "/nonexistent")
            v = volume_named(pod, m["name"]) if m else None
            claim = (v or {}).get("persistentVolumeClaim", {}).get("claimName")
            if not m or m.get("readOnly") or claim != witness:
                problem(f"audit: --checkpoint-witness-dir={wd!r} is not a writable mount of the claim {witness!r} ({claim!r})")
        elif wd is not None:
            problem("audit: --checkpoint-witness-dir without a witness configured")
    if "repo-watcher" in by:
        pod = by["repo-watcher"]["spec"]["template"]["spec"]
        c = pod["containers"][0]
        flags = flag_values(c.get("args") or [])
        sd = flags.get("--secrets-dir")
        if repo_secrets:
            m = mount_at(c, sd or "/nonexistent")
            v = volume_named(pod, m["name"]) if m else None
            if not m or not m.get("readOnly") or m.get("subPath") or not v or \
                    v.get("secret", {}).get("secretName") != repo_secrets or v["secret"].get("items"):
                problem(f"repo-watcher: --secrets-dir={sd!r} is not the whole Secret {repo_secrets} mounted read-only")
        elif sd is not None:
            problem("repo-watcher: --secrets-dir without a secrets Secret")
        if flags.get("--secret-env-prefix") != "FERRY_SECRET_":
            problem(f"repo-watcher: --secret-env-prefix={flags.get('--secret-env-prefix')!r}")
    if "planner" in by:
        # The Git host API tokens of preview comments (docs/previews.md).
        pod = by["planner"]["spec"]["template"]["spec"]
        c = pod["containers"][0]
        flags = flag_values(c.get("args") or [])
        sd = flags.get("--secrets-dir")
        if planner_secrets:
            m = mount_at(c, sd or "/nonexistent")
            v = volume_named(pod, m["name"]) if m else None
            if not m or not m.get("readOnly") or m.get("subPath") or not v or \
                    v.get("secret", {}).get("secretName") != planner_secrets or v["secret"].get("items"):
                problem(f"planner: --secrets-dir={sd!r} is not the whole Secret {planner_secrets} mounted read-only")
        elif sd is not None:
            problem("planner: --secrets-dir without a secrets Secret")
        if flags.get("--secret-env-prefix") != "FERRY_SECRET_":
            problem(f"planner: --secret-env-prefix={flags.get('--secret-env-prefix')!r}")
    if "deployer" in by:
        pod = by["deployer"]["spec"]["template"]["spec"]
        c = pod["containers"][0]
        flags = flag_values(c.get("args") or [])
        roots = [r for r in flags.get("--allowed-roots", "").split(",") if r]
        if not roots:
            problem("deployer: no --allowed-roots")
        for r in roots:
            if r.rstrip("/") == "" or not r.startswith("/"):
                problem(f"deployer: allowed root {r!r}")
            elif writable_mount_beneath(pod, c, r) is None:
                problem(f"deployer: allowed root {r} is beneath no writable volume")
        if flags.get("--workload-user") != workload_user:
            problem(f"deployer: --workload-user={flags.get('--workload-user')!r}, want {workload_user!r}")


def service_volumes(svc):
    """[(source, target, read_only)] of a compose service, short or long form."""
    out = []
    for v in svc.get("volumes") or []:
        if isinstance(v, str):
            parts = v.split(":")
            out.append((parts[0], parts[1] if len(parts) > 1 else parts[0], len(parts) > 2 and "ro" in parts[2].split(",")))
        else:
            out.append((v.get("source"), v.get("target"), bool(v.get("read_only"))))
    return out


def as_list(x):
    if x is None:
        return []
    return [x] if isinstance(x, str) else list(x)


def check_compose(doc):
    services = doc.get("services") or {}
    named = set((doc.get("volumes") or {}).keys())
    certs = services.get("certs")
    if certs is None:
        problem("no one-shot `certs` service")
        return
    if str(certs.get("restart", "no")) not in ("no", "False", "false"):
        problem(f"certs: restart {certs.get('restart')!r}: a one-shot service must not restart")
    cmd = as_list(certs.get("entrypoint")) + as_list(certs.get("command"))
    at = next((i for i, c in enumerate(cmd) if c.endswith("ferry-init")), None)
    if at is None or len(cmd) < at + 3:
        problem(f"certs: does not run ferry-init CA_DIR OUT_DIR NAME...: {cmd}")
        return
    ca_dir, out_dir, names = cmd[at + 1], cmd[at + 2], cmd[at + 3:]
    certs_vols = {tgt: src for src, tgt, _ in service_volumes(certs)}
    ferry = {n: s for n, s in services.items()
             if n != "certs" and any(f"ferry-{n}" in c for c in as_list(s.get("entrypoint")))}
    if sorted(ferry) != ["audit", "deployer", "notifier", "planner", "repo-watcher"]:
        problem(f"Ferry services found: {sorted(ferry)}")
    for n in ferry:
        if n not in names:
            problem(f"certs: the compose name {n!r} is not an extra SAN ({names})")
        check_peers(n, flag_values(as_list(ferry[n].get("command"))), ferry[n].get("environment") or {})
    auth_volume, ca_volume = certs_vols.get(out_dir), certs_vols.get(ca_dir)
    for what, vol, d in (("output", auth_volume, out_dir), ("CA", ca_volume, ca_dir)):
        if vol not in named:
            problem(f"certs: its {what} {d!r} is not a named volume ({certs_vols})")
    ca_volumes = {ca_volume}
    for n, s in ferry.items():
        dep = s.get("depends_on") or {}
        cond = dep.get("certs", {}).get("condition") if isinstance(dep, dict) else None
        if cond != "service_completed_successfully":
            problem(f"{n}: depends_on certs with condition {cond!r}, want service_completed_successfully")
        vols = service_volumes(s)
        mount = next(((tgt, ro) for src, tgt, ro in vols if src == auth_volume), None)
        if mount is None:
            problem(f"{n}: does not mount the volume {auth_volume!r}")
            continue
        if not mount[1]:
            problem(f"{n}: mounts {auth_volume!r} read-write")
        for src, _, _ in vols:
            if src in ca_volumes:
                problem(f"{n}: mounts the CA's volume {src!r}")
        flags = flag_values(as_list(s.get("command")))
        want = list(FLAGS) + (["--bootstrap-admin-token-file"] if n == "planner" else [])
        for f in want:
            path = flags.get(f, "")
            if not path.startswith(mount[0].rstrip("/") + "/"):
                problem(f"{n}: {f}={path!r} is not in the mounted volume at {mount[0]}")
        if flags.get("--tls-cert-file", "").endswith(f"/{n}.pem") is False:
            problem(f"{n}: --tls-cert-file is not its own certificate {n}.pem")
        for f in INSECURE:
            if f in flags:
                problem(f"{n}: passes {f}")
    check_compose_confinement(services, named, auth_volume, ca_volume, certs)


def volume_of(svc, path):
    """(source, target, read_only) of the volume `path` is in, or None."""
    best = None
    for src, tgt, ro in service_volumes(svc):
        t = tgt.rstrip("/")
        if (path == t or path.startswith(t + "/")) and (best is None or len(t) > len(best[1])):
            best = (src, t, ro)
    return best


def check_compose_confinement(services, named, auth_volume, ca_volume, certs):
    db_volumes = {src for src, _, _ in service_volumes(services.get("postgres") or {})}
    private = set((certs.get("environment") or {}).get("FERRY_PRIVATE_DIRS", "").split())
    certs_vols = {src: tgt for src, tgt, _ in service_volumes(certs)}
    audit = services.get("audit") or {}
    flags = flag_values(as_list(audit.get("command")))
    found = {}
    for f in ("--checkpoint-key-file", "--checkpoint-witness-dir"):
        v = volume_of(audit, flags.get(f, "/nonexistent"))
        if v is None or v[0] not in named or v[2]:
            problem(f"audit: {f}={flags.get(f)!r} is not in a writable named volume")
            continue
        if v[0] in db_volumes or v[0] in (auth_volume, ca_volume):
            problem(f"audit: {f} is in the volume {v[0]!r}, shared with the database or the credentials")
        found[f] = v[0]
    if len(set(found.values())) < len(found):
        problem("audit: the key and the witness share a volume")
    if "--checkpoint-witness-dir" in found and certs_vols.get(found["--checkpoint-witness-dir"]) not in private:
        problem("audit: `certs` does not prepare the witness volume for the services' user")
    rw = services.get("repo-watcher") or {}
    flags = flag_values(as_list(rw.get("command")))
    sd = flags.get("--secrets-dir", "/nonexistent")
    v = volume_of(rw, sd)
    if v is None or v[0] not in named or not v[2] or v[1] != sd.rstrip("/"):
        problem(f"repo-watcher: --secrets-dir={sd!r} is not a whole named volume mounted read-only")
    elif v[0] in (auth_volume, ca_volume):
        problem(f"repo-watcher: --secrets-dir is the credentials volume {v[0]!r}: references could name token.key")
    elif certs_vols.get(v[0]) not in private:
        problem("repo-watcher: `certs` does not prepare the secrets volume (mode 0700, the services' user)")
    if flags.get("--secret-env-prefix") != "FERRY_SECRET_":
        problem(f"repo-watcher: --secret-env-prefix={flags.get('--secret-env-prefix')!r}")
    dep = services.get("deployer") or {}
    flags = flag_values(as_list(dep.get("command")))
    roots = [r for r in flags.get("--allowed-roots", "").split(",") if r]
    if not roots:
        problem("deployer: no --allowed-roots")
    for r in roots:
        v = volume_of(dep, r)
        if r.rstrip("/") == "" or v is None or v[0] not in named or v[2]:
            problem(f"deployer: allowed root {r!r} is not beneath a writable named volume")
    check_compose_terraform(services, named, dep, flags, certs, certs_vols)
    check_compose_declared_secrets(services, named, auth_volume, ca_volume, certs_vols, private)


def check_compose_terraform(services, named, dep, flags, certs, certs_vols):
    """The deployer's Terraform target: on, its state URL (with a password)
    in a volume only `certs` writes and only the deployer reads."""
    plan_dir = flags.get("--terraform-plan-dir")
    if not plan_dir:
        problem("deployer: no --terraform-plan-dir (the Terraform target is off)")
    else:
        v = volume_of(dep, plan_dir)
        if v is None or v[0] not in named or v[2]:
            problem(f"deployer: --terraform-plan-dir={plan_dir!r} is not beneath a writable named volume")
    if "--terraform-state-url" in flags:
        problem("deployer: the Terraform state URL (it holds a password) is on the command line")
    url_file = flags.get("--terraform-state-url-file", "")
    v = volume_of(dep, url_file) if url_file else None
    if v is None or v[0] not in named or not v[2]:
        problem(f"deployer: --terraform-state-url-file={url_file!r} is not in a named volume mounted read-only")
        return
    for n, s in services.items():
        if n not in ("deployer", "certs") and any(src == v[0] for src, _, _ in service_volumes(s)):
            problem(f"{n}: mounts the deployer's Terraform state URL volume {v[0]!r}")
    made = (certs.get("environment") or {}).get("FERRY_DB_TERRAFORM_URL_DIR")
    if made is None or certs_vols.get(v[0]) != made.rstrip("/") or url_file != made.rstrip("/") + "/state.url":
        problem(f"deployer: `certs` does not make {url_file!r} (FERRY_DB_TERRAFORM_URL_DIR={made!r})")


def check_compose_declared_secrets(services, named, auth_volume, ca_volume, certs_vols, private):
    """The notifier's secrets of ferry.yaml subscriptions: their own volume,
    never the one of the operator's subscriptions (anyone who can push names
    them)."""
    notifier = services.get("notifier") or {}
    flags = flag_values(as_list(notifier.get("command")))
    own = volume_of(notifier, flags.get("--secrets-dir", "/nonexistent"))
    dd = flags.get("--declared-secrets-dir")
    if not dd:
        problem("notifier: no --declared-secrets-dir (secrets of declared subscriptions are refused)")
        return
    v = volume_of(notifier, dd)
    if v is None or v[0] not in named or not v[2] or v[1] != dd.rstrip("/"):
        problem(f"notifier: --declared-secrets-dir={dd!r} is not a whole named volume mounted read-only")
    elif v[0] in (auth_volume, ca_volume) or (own is not None and v[0] == own[0]):
        problem(f"notifier: --declared-secrets-dir shares the volume {v[0]!r} with other secrets")
    elif certs_vols.get(v[0]) not in private:
        problem("notifier: `certs` does not prepare the declared secrets volume (mode 0700, the services' user)")


def check_terraform(objs, state_url):
    """The deployer's Terraform target and the notifier's declared secrets as
    values turn them on: flags, the state URL from a Secret by environment
    only, plans and scratch copies on writable volumes, the declared secrets
    a whole Secret mounted read-only apart from the notifier's own."""
    by = {component_of(d): d for d in deployments(objs)}
    dep, notifier = by.get("deployer"), by.get("notifier")
    if dep is None or notifier is None:
        problem("no deployer or notifier Deployment")
        return
    pod = dep["spec"]["template"]["spec"]
    c = next(x for x in pod["containers"] if x["name"] == "deployer")
    args = c.get("args") or []
    flags = flag_values(args)
    for f in ("--terraform-plan-dir", "--terraform-binary", "--terraform-scratch-dir", "--terraform-plans-in-database"):
        if f not in flags:
            problem(f"deployer: no {f}")
    for f in ("--terraform-plan-dir", "--terraform-scratch-dir"):
        if f in flags and writable_mount_beneath(pod, c, flags[f]) is None:
            problem(f"deployer: {f}={flags[f]!r} is beneath no writable volume (the root filesystem is read-only)")
    if any("state-url" in a or "postgresql://" in a for a in args):
        problem("deployer: the Terraform state URL (it holds a password) is on the command line")
    env = {e["name"]: e for e in c.get("env") or []}
    url = env.get("FERRY_TERRAFORM_STATE_URL")
    if state_url:
        ref = ((url or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
        if ref.get("name") != "tf-state" or ref.get("key") != "terraform-state-url":
            problem(f"deployer: FERRY_TERRAFORM_STATE_URL is not the Secret tf-state's terraform-state-url: {url}")
    elif url is not None:
        problem("deployer: FERRY_TERRAFORM_STATE_URL set without stateUrl.existingSecret")
    for comp, d in by.items():
        if comp != "deployer" and any(e.get("name") == "FERRY_TERRAFORM_STATE_URL"
                                      for x in d["spec"]["template"]["spec"]["containers"] for e in x.get("env") or []):
            problem(f"{comp}: has the Terraform state URL")
    npod = notifier["spec"]["template"]["spec"]
    nc = next(x for x in npod["containers"] if x["name"] == "notifier")
    nflags = flag_values(nc.get("args") or [])
    if not state_url:
        return
    dd = nflags.get("--declared-secrets-dir")
    if not dd:
        problem("notifier: no --declared-secrets-dir")
        return
    m = mount_at(nc, dd)
    vol = volume_named(npod, m["name"]) if m else None
    if m is None or not m.get("readOnly") or m.get("subPath") or not vol or "secret" not in vol:
        problem(f"notifier: --declared-secrets-dir={dd!r} is not a whole Secret mounted read-only")
    elif vol["secret"].get("secretName") != "declared":
        problem(f"notifier: --declared-secrets-dir mounts {vol['secret'].get('secretName')!r}, not the Secret declared")
    if nflags.get("--declared-secret-env-prefix") != "FERRY_SECRET_DECLARED_":
        problem(f"notifier: --declared-secret-env-prefix={nflags.get('--declared-secret-env-prefix')!r}")


# Flags naming a peer's address, and the component they must reach.
PEER_FLAGS = {
    "--audit-address": "audit",
    "--repo-watcher-address": "repo-watcher",
    "--deployer-address": "deployer",
    "--planner-address": "planner",
}


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def container_port(container, target):
    """The container port number a Service targetPort (name or number) reaches, or None."""
    for p in container.get("ports") or []:
        if (isinstance(target, int) and p.get("containerPort") == target) or p.get("name") == target:
            return p.get("containerPort")
    return None


def check_wiring(objs, namespace, release, targets, cluster_rules):
    seen = {}
    for o in objs:
        md = o["metadata"]
        seen[(o["kind"], md.get("namespace", ""), md["name"])] = o
    objs = list(seen.values())

    def of_kind(kind, ns=namespace):
        return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind and o["metadata"].get("namespace", "") == ns}

    deps = of_kind("Deployment")
    services = of_kind("Service")
    secrets = of_kind("Secret")
    config_maps = of_kind("ConfigMap")
    claims = of_kind("PersistentVolumeClaim")
    accounts = of_kind("ServiceAccount")
    if not deps:
        problem(f"no Deployment stored in namespace {namespace}")
    by_component = {component_of(d): d for d in deps.values()}

    # Services: each selects exactly one Deployment's pods, on ports they declare.
    selected = {}
    for name, svc in services.items():
        sel = svc["spec"].get("selector") or {}
        hits = [d for d in deps.values() if selects(sel, d["spec"]["template"]["metadata"].get("labels") or {})]
        stateful = [s for s in of_kind("StatefulSet").values()
                    if selects(sel, s["spec"]["template"]["metadata"].get("labels") or {})]
        if stateful and not hits:
            continue  # the bundled PostgreSQL
        if len(hits) != 1:
            problem(f"Service {name} selects the pods of {len(hits)} Deployments "
                    f"({', '.join(d['metadata']['name'] for d in hits) or 'none'}), want 1")
            continue
        d = hits[0]
        if not selects(d["spec"]["selector"].get("matchLabels") or {}, d["spec"]["template"]["metadata"]["labels"]):
            problem(f"Deployment {d['metadata']['name']}: selector does not match its pod labels")
        c = d["spec"]["template"]["spec"]["containers"][0]
        ports = {}
        for p in svc["spec"].get("ports") or []:
            target = p.get("targetPort", p["port"])
            cp = container_port(c, target)
            if cp is None:
                problem(f"Service {name} port {p['port']} targets {target!r}, which pods of "
                        f"{d['metadata']['name']} do not declare")
            ports[p["port"]] = cp
        selected[name] = (component_of(d), ports)
    for comp, d in by_component.items():
        if not any(v[0] == comp for v in selected.values()):
            problem(f"no Service selects the pods of {d['metadata']['name']} ({comp})")

    def service_of(host):
        short = host.split(".")[0]
        allowed = {short, f"{short}.{namespace}", f"{short}.{namespace}.svc"}
        if host in allowed or (host.startswith(f"{short}.{namespace}.svc.") and len(host.split(".")) > 3):
            return short
        return None

    for comp, d in by_component.items():
        pod = d["spec"]["template"]["spec"]
        c = pod["containers"][0]
        flags = flag_values(c.get("args") or [])
        check_peers(comp, flags, {e["name"]: e.get("value", "") for e in c.get("env") or []})
        for flag, peer in PEER_FLAGS.items():
            value = flags.get(flag)
            if not value:
                continue
            host, _, port = value.rpartition(":")
            svc = service_of(host)
            if svc is None or svc not in services:
                problem(f"{comp}: {flag}={value}: {host!r} is not a Service of namespace {namespace}")
                continue
            if svc not in selected:
                continue  # reported above
            got, ports = selected[svc]
            if got != peer:
                problem(f"{comp}: {flag}={value}: Service {svc} selects the pods of {got!r}, not {peer!r}")
                continue
            if not port.isdigit() or int(port) not in ports:
                problem(f"{comp}: {flag}={value}: Service {svc} has no port {port}")
                continue
            peer_flags = flag_values(by_component[peer]["spec"]["template"]["spec"]["containers"][0].get("args") or [])
            listen = peer_flags.get("--grpc-address", "").rpartition(":")[2]
            if str(ports[int(port)]) != listen:
                problem(f"{comp}: {flag}={value}: reaches container port {ports[int(port)]} of {peer}, "
                        f"which listens for gRPC on {listen or 'nothing'}")

        # What the pod mounts or reads must exist.
        name = d["metadata"]["name"]
        sa = pod.get("serviceAccountName", "default")
        if sa not in accounts:
            problem(f"Deployment {name}: ServiceAccount {sa} does not exist in {namespace}")
        sources = []
        for v in pod.get("volumes") or []:
            if "projected" in v:
                sources.extend(v["projected"].get("sources") or [])
            else:
                sources.append(v)
        for src in sources:
            if "secret" in src:
                ref = src["secret"]
                ref_name, store, kind = ref.get("secretName", ref.get("name")), secrets, "Secret"
            elif "configMap" in src:
                ref = src["configMap"]
                ref_name, store, kind = ref.get("name"), config_maps, "ConfigMap"
            elif "persistentVolumeClaim" in src:
                if src["persistentVolumeClaim"]["claimName"] not in claims:
                    problem(f"Deployment {name}: claim {src['persistentVolumeClaim']['claimName']} does not exist")
                continue
            else:
                continue
            if ref.get("optional"):
                continue
            obj = store.get(ref_name)
            if obj is None:
                problem(f"Deployment {name}: mounts {kind} {ref_name}, which does not exist in {namespace}")
                continue
            keys = set(obj.get("data") or {}) | set(obj.get("binaryData") or {})
            for item in ref.get("items") or []:
                if item["key"] not in keys:
                    problem(f"Deployment {name}: mounts key {item['key']} of {kind} {ref_name}, which has none")
        for ctr in pod.get("containers", []) + pod.get("initContainers", []):
            for e in ctr.get("env") or []:
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if not ref or ref.get("optional"):
                    continue
                obj = secrets.get(ref["name"])
                if obj is None or ref["key"] not in (obj.get("data") or {}):
                    problem(f"Deployment {name}: env {e['name']} reads key {ref['key']} of Secret {ref['name']}, "
                            "which does not exist")

    # RBAC: namespaced, in the target namespaces only, for the deployer only.
    want_ns = set(targets or [namespace])
    deployer_sa = f"{release}-deployer"
    check_rbac(objs, None)
    for o in objs:
        kind, ns, oname = o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]
        if kind in ("Role", "RoleBinding") and ns not in want_ns:
            problem(f"{kind} {ns}/{oname} is outside the target namespaces {sorted(want_ns)}")
        if kind in ("ClusterRole", "ClusterRoleBinding") and not cluster_rules:
            problem(f"{kind} {oname} without rbac.clusterRules")
        if kind in ("RoleBinding", "ClusterRoleBinding"):
            ref = o["roleRef"]
            if kind == "RoleBinding" and ref["kind"] == "Role" and (("Role", ns, ref["name"]) not in seen):
                problem(f"RoleBinding {ns}/{oname} binds Role {ref['name']}, which does not exist in {ns}")
            if kind == "RoleBinding" and ref["kind"] != "Role":
                problem(f"RoleBinding {ns}/{oname} binds a {ref['kind']}, not a Role of its namespace")
            for sub in o.get("subjects") or []:
                if sub.get("kind") != "ServiceAccount" or sub.get("name") != deployer_sa or \
                        sub.get("namespace") != namespace:
                    problem(f"{kind} {ns}/{oname} binds {sub.get('kind')} {sub.get('namespace')}/{sub.get('name')}, "
                            f"not {namespace}/{deployer_sa}")
                elif deployer_sa not in accounts:
                    problem(f"{kind} {ns}/{oname} binds {deployer_sa}, which does not exist in {namespace}")
    for t in want_ns:
        if ("RoleBinding", t, f"{release}-deployer") not in seen:
            problem(f"no RoleBinding {release}-deployer in target namespace {t}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("check")
    p.add_argument("--release", default="ferry")
    p.add_argument("--namespace", default="ferry")
    p.add_argument("--deployer-token", action="store_true")
    p.add_argument("--bootstrap", action="store_true")
    p.add_argument("--expect-roles", type=int)
    p.add_argument("--key", choices=["secret", "claim", "ephemeral"], default="secret")
    p.add_argument("--trusted", action="store_true")
    p.add_argument("--witness")
    p.add_argument("--repo-secrets")
    p.add_argument("--planner-secrets")
    p.add_argument("--workload-user")
    p.add_argument("--target-namespaces", default="")
    p.add_argument("--cluster-rules", action="store_true")
    p.add_argument("--no-state-url", action="store_true")
    a = p.parse_args()
    text = sys.stdin.read()
    if a.check == "compose":
        check_compose(yaml.safe_load(text))
    else:
        objs = objects(text)
        if a.check == "service-accounts":
            check_service_accounts(objs, a.release, a.deployer_token)
        elif a.check == "rbac":
            check_rbac(objs, a.expect_roles)
        elif a.check == "tls":
            check_tls(objs, a.bootstrap)
        elif a.check == "insecure":
            check_insecure(objs)
        elif a.check == "cert-manager":
            check_cert_manager(objs, a.release, a.namespace)
        elif a.check == "wiring":
            check_wiring(objs, a.namespace, a.release, [t for t in a.target_namespaces.split(",") if t],
                         a.cluster_rules)
        elif a.check == "terraform":
            check_terraform(objs, not a.no_state_url)
        elif a.check == "confinement":
            check_confinement(objs, a.key, a.trusted, a.witness, a.repo_secrets, a.workload_user, a.planner_secrets)
        else:
            sys.exit(f"unknown check {a.check}")
    for msg in problems:
        print(f"{a.check}: {msg}", file=sys.stderr)
    sys.exit(1 if problems else 0)


main()
