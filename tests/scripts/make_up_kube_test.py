#!/usr/bin/python3
"""`make up-kube` (FERRY_KUBE=1 scripts/ferry-up) run as the README tells a
newcomer to, checked end to end (`make test-up-kube`; README, "make up-kube"):

1. Ferry comes up with the local cluster (scripts/kube-local: the real
   kube-apiserver, kube-controller-manager and kube-scheduler, kwok as the
   kubelet) and the example's hello-kube: its Deployment rolled out by the
   real controllers (a ReplicaSet owned by it, two pods scheduled on the kwok
   node, Running and Ready, two available replicas) and Ferry's deployment of
   it succeeded.
2. The README's commit changing the ConfigMap's greeting is applied; a commit
   changing the image rolls the Deployment out again (a new ReplicaSet, two
   updated and available replicas, the old one scaled to 0).
3. The README's unschedulable commit (a nodeSelector no node has): the
   Deployment passes its progress deadline, Ferry fails the deployment and
   rolls it back automatically (an AUTO_ROLLBACK deployment restoring the
   last healthy revision), the cluster runs the previous template again,
   `ferry app history hello-kube` says so, and the audit trail holds the
   failure, the rollback and the pin. The README's way back (revert, a new
   image, push, `ferry app unpin`) deploys the branch's head.
4. Ctrl-C (SIGINT to make up's process group, as a terminal sends it) stops
   everything: no process left behind, the cluster's folder removed.
5. A second `make up-kube` on the same state (Ferry's data kept, a new and
   empty cluster) puts hello-kube back as last deployed (self-heal, in the
   apply order: the Namespace first), and Ctrl-C again leaves nothing.
usage: make_up_kube_test.py <repo-root> <build-dir>
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(sys.argv[1])
BUILD = os.path.abspath(sys.argv[2])
OFF = 550
DEPLOYER, AUDIT = "127.0.0.1:%d" % (7003 + OFF), "127.0.0.1:%d" % (7004 + OFF)
GIT = ["git", "-c", "user.name=Newcomer", "-c", "user.email=newcomer@example.invalid"]
STATE = {}


def say(msg):
    print(msg, flush=True)


def fail(msg):
    log = STATE.get("log")
    if log and os.path.exists(log):
        print("--- the end of make up's output:\n" + "".join(open(log).readlines()[-30:]), file=sys.stderr)
    raise SystemExit("FAIL: " + msg)


def wait_for(what, pred, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.5)
    fail("timed out after %d s waiting for %s" % (timeout, what))


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)


def kubectl(*args):
    out = run([os.path.join(ROOT, ".tools/bin/kubectl"), "--kubeconfig", STATE["kubeconfig"], *args])
    if out.returncode != 0:
        fail("kubectl %s: %s" % (" ".join(args), out.stderr.strip()))
    return out.stdout


def kget(*args):
    return json.loads(kubectl("-n", "hello", "get", *args, "-o", "json"))


def rpc(target, method, req):
    out = run([os.path.join(ROOT, "scripts/ferry-rpc"), target, method, json.dumps(req)], env=STATE["rpc_env"])
    if out.returncode != 0:
        fail("%s: %s %s" % (method, out.stdout, out.stderr))
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def deployments():
    return rpc(DEPLOYER, "ferry.v1.Deployer.ListDeployments",
               {"application_id": "hello-kube", "environment_id": "kube", "page_size": 100})[0].get("deployments", [])


def deployment_of(sha, state):
    for d in deployments():
        if d.get("revision", {}).get("sha") == sha and d.get("kind", "DEPLOYMENT_KIND_ROLLOUT") == \
                "DEPLOYMENT_KIND_ROLLOUT" and d.get("state") == state:
            return d
    return None


def rolled_out(image):
    """The Deployment hello rolled out by the controllers at `image`: every
    replica updated and available, the ReplicaSet of that template owned by
    it, two pods on the kwok node Running and Ready."""
    d = kget("deployment", "hello")
    st = d.get("status", {})
    if st.get("observedGeneration") != d["metadata"]["generation"]:
        return None
    if d["spec"]["template"]["spec"]["containers"][0]["image"] != image:
        return None
    if not (st.get("replicas") == st.get("updatedReplicas") == st.get("availableReplicas") == st.get("readyReplicas") == 2):
        return None
    rss = [rs for rs in kget("replicasets")["items"]
           if any(o.get("kind") == "Deployment" and o.get("name") == "hello" for o in rs["metadata"].get("ownerReferences", []))]
    # The Deployment's current ReplicaSet: the same revision annotation.
    revision = d["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision")
    current = [rs for rs in rss if rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision") == revision
               and rs["spec"]["template"]["spec"]["containers"][0]["image"] == image]
    if len(current) != 1 or current[0].get("status", {}).get("availableReplicas") != 2:
        return None
    if any(rs["spec"].get("replicas", 0) != 0 for rs in rss if rs is not current[0]):
        return None
    pods = [p for p in kget("pods", "-l", "app=hello")["items"] if not p["metadata"].get("deletionTimestamp")]
    if len(pods) != 2:
        return None
    for p in pods:
        ready = {c["type"]: c["status"] for c in p.get("status", {}).get("conditions", [])}
        if p["spec"].get("nodeName") != "kwok-node-0" or p["status"].get("phase") != "Running" or ready.get("Ready") != "True":
            return None
        if p["spec"]["containers"][0]["image"] != image:
            return None
    return {"replicasets": len(rss), "current": current[0]["metadata"]["name"]}


def push(clone, message, path, edit):
    p = os.path.join(clone, path)
    before = open(p).read()
    subprocess.run(["sed", "-i", edit, p], check=True)
    if open(p).read() == before:
        fail("the README's edit %r changed nothing in %s" % (edit, path))
    subprocess.run(GIT + ["-C", clone, "commit", "-qam", message], check=True)
    subprocess.run(["git", "-C", clone, "push", "-q"], check=True, capture_output=True)
    return run(["git", "-C", clone, "rev-parse", "HEAD"]).stdout.strip()


def start(env, ready):
    if os.path.exists(ready):
        os.remove(ready)
    up = subprocess.Popen([os.path.join(ROOT, "scripts/ferry-up")], env=env, stdout=open(STATE["log"], "a"),
                          stderr=subprocess.STDOUT, start_new_session=True)
    wait_for("make up-kube to finish (see %s)" % STATE["log"],
             lambda: os.path.exists(ready) or (up.poll() is not None and fail("ferry-up exited")), 600)
    return up


def ctrl_c(up, work, cluster, check):
    """SIGINT to make up's process group, as a terminal's Ctrl-C; with
    `check`, fails when a process or the cluster's folder is left behind."""
    try:
        os.killpg(up.pid, signal.SIGINT)
    except ProcessLookupError:
        pass
    try:
        up.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(up.pid, signal.SIGKILL)
        fail("make up-kube did not stop within 120 s of Ctrl-C")
    time.sleep(1)
    pattern = work + ("|" + cluster if cluster else "")
    left = run(["pgrep", "-af", pattern]).stdout.strip()
    left = "\n".join(l for l in left.splitlines() if "pgrep" not in l)
    if check:
        if left:
            fail("processes left behind:\n" + left)
        if cluster and os.path.exists(cluster):
            fail("the cluster's folder %s is still there" % cluster)
        say("   everything stopped: no process left behind, the cluster's folder removed")


def cluster_dir(home):
    p = os.path.join(home, "kube", "cluster")
    return open(p).read().strip() if os.path.exists(p) else ""


def main():
    work = tempfile.mkdtemp(prefix="ferry-upkube-test.")
    os.chmod(work, 0o755)  # PostgreSQL runs as postgres and must reach its folder
    home = os.path.join(work, "ferry")
    STATE["log"] = os.path.join(work, "up.log")
    STATE["kubeconfig"] = os.path.join(home, "kube", "kubeconfig")
    ready = os.path.join(work, "ready")
    env = dict(os.environ, FERRY_HOME=home, FERRY_PORT_OFFSET=str(OFF), FERRY_READY_FILE=ready,
               FERRY_BUILD_DIR=BUILD, FERRY_KUBE="1", FERRY_CONFIG=os.path.join(work, "ferry-config.yaml"))
    for k in ("FERRY_DATABASE_URL", "FERRY_INSECURE", "FERRY_PG_PORT", "FERRY_TOKEN", "FERRY_TOKEN_FILE",
              "FERRY_CACERT", "FERRY_CONTEXT"):
        env.pop(k, None)
    STATE["rpc_env"] = dict(env, FERRY_CACERT=os.path.join(home, "tls", "ca.pem"),
                            FERRY_TOKEN_FILE=os.path.join(home, "admin.token"))
    say("1. make up-kube (FERRY_KUBE=1 scripts/ferry-up) in %s" % work)
    up = None
    ok = False
    try:
        up = start(env, ready)
        banner = open(STATE["log"]).read()
        if 'environment "kube", application hello-kube' not in banner:
            fail("the banner does not show the local cluster")
        got = wait_for("hello-kube's Deployment rolled out at hello:1.0",
                       lambda: rolled_out("registry.example.invalid/hello:1.0"), 120)
        say("   rolled out by the controllers: ReplicaSet %s, 2 pods Running and Ready on kwok-node-0" % got["current"])
        first = [d for d in deployments() if d.get("state") == "DEPLOYMENT_STATE_SUCCEEDED"]
        if not first:
            fail("Ferry recorded no successful deployment of hello-kube: %s" % deployments())
        say("   Ferry: %s %s" % (first[0]["id"], first[0].get("message", "")))

        say("2. the README's change: the greeting v1 -> v2, committed and pushed")
        clone = os.path.join(work, "example")
        subprocess.run(["git", "clone", "-q", os.path.join(home, "repos", "example.git"), clone], check=True)
        v2 = push(clone, "greeting v2", "apps/hello-kube/configmap.yaml", 's/v1"/v2"/')
        wait_for("the greeting v2 in the cluster", lambda: kget("configmap", "hello-greeting")["data"]["greeting"]
                 == "hello from Git, v2", 60)
        wait_for("Ferry's deployment of %s" % v2[:7], lambda: deployment_of(v2, "DEPLOYMENT_STATE_SUCCEEDED"), 60)
        say("   applied: hello-greeting says \"hello from Git, v2\"")
        v11 = push(clone, "hello 1.1", "apps/hello-kube/deployment.yaml", "s/hello:1.0/hello:1.1/")
        d = wait_for("Ferry's deployment of %s" % v11[:7], lambda: deployment_of(v11, "DEPLOYMENT_STATE_SUCCEEDED"), 90)
        got = rolled_out("registry.example.invalid/hello:1.1")  # Ferry waited for the rollout: done already
        if not got:
            fail("Ferry reported %s succeeded before the Deployment was rolled out at hello:1.1" % d["id"])
        say("   image hello:1.1 rolled out (ReplicaSet %s; the old one at 0) before Ferry's %s succeeded" % (
            got["current"], d["id"]))

        say("3. the README's unschedulable rollout (nodeSelector {disktype: ssd})")
        bad = push(clone, "unschedulable", "apps/hello-kube/deployment.yaml",
                   r"s/^    spec:$/    spec:\n      nodeSelector: {disktype: ssd}/")
        wait_for("a pod nobody can schedule", lambda: any(
            p["status"].get("phase") == "Pending" and p["spec"].get("nodeSelector")
            for p in kget("pods", "-l", "app=hello")["items"]), 60)
        failed = wait_for("the deployment of %s rolled back" % bad[:7],
                          lambda: deployment_of(bad, "DEPLOYMENT_STATE_ROLLED_BACK"), 180)
        if "progress deadline" not in failed.get("message", ""):
            fail("%s was rolled back for another reason: %s" % (failed["id"], failed.get("message")))
        say("   %s: %s" % (failed["id"], failed["message"][:200]))
        rb = wait_for("the automatic rollback to finish", lambda: next((
            x for x in deployments() if x.get("kind") == "DEPLOYMENT_KIND_AUTO_ROLLBACK"
            and x.get("rollbackOfDeploymentId") == failed["id"] and x.get("state") == "DEPLOYMENT_STATE_SUCCEEDED"), None), 60)
        if rb.get("revision", {}).get("sha") != v11:
            fail("the rollback restored %s, not the last healthy %s" % (rb.get("revision"), v11))
        got = wait_for("the Deployment back at hello:1.1 without the nodeSelector", lambda: (
            not kget("deployment", "hello")["spec"]["template"]["spec"].get("nodeSelector")
            and rolled_out("registry.example.invalid/hello:1.1")), 90)
        say("   %s restored %s: the cluster runs ReplicaSet %s again, the Pending pod gone" % (
            rb["id"], v11[:7], got["current"]))
        history = run([os.path.join(BUILD, "bin", "ferry"), "app", "history", "hello-kube"], env=STATE["rpc_env"])
        if history.returncode != 0 or "RolledBack" not in history.stdout or "AutoRollback" not in history.stdout:
            fail("`ferry app history hello-kube` does not show the rollback: %s %s" % (history.stdout, history.stderr))
        say("   ferry app history hello-kube:\n" + "\n".join("     " + l for l in history.stdout.splitlines()[:4]))

        def audited():
            events = rpc(AUDIT, "ferry.v1.Audit.Query", {"filter": {"application_id": "hello-kube", "actions": [
                "AUDIT_ACTION_DEPLOYMENT_FAILED", "AUDIT_ACTION_DEPLOYMENT_ROLLED_BACK", "AUDIT_ACTION_PINNED"]},
                "page_size": 100})[0].get("events", [])
            seen = {}
            for e in events:
                if failed["id"] in json.dumps(e) or rb["id"] in json.dumps(e):
                    seen.setdefault(e["action"], e)
            return seen if len(seen) == 3 else None
        seen = wait_for("the audit trail of the failure, the rollback and the pin", audited, 60)
        for action in sorted(seen):
            say("   audit: %s: %s" % (action, seen[action].get("message", "")[:140]))

        say("   the README's way back: revert, hello:1.2, push, unpin")
        subprocess.run(GIT + ["-C", clone, "revert", "--no-edit", "HEAD"], check=True, capture_output=True)
        v12 = push(clone, "hello 1.2", "apps/hello-kube/deployment.yaml", "s/hello:1.1/hello:1.2/")
        unpin = run([os.path.join(BUILD, "bin", "ferry"), "app", "unpin", "hello-kube", "--env", "kube"],
                    env=STATE["rpc_env"])
        if unpin.returncode != 0:
            fail("ferry app unpin: %s %s" % (unpin.stdout, unpin.stderr))
        wait_for("Ferry's deployment of %s after the unpin" % v12[:7],
                 lambda: deployment_of(v12, "DEPLOYMENT_STATE_SUCCEEDED"), 90)
        got = wait_for("the Deployment rolled out at hello:1.2",
                       lambda: rolled_out("registry.example.invalid/hello:1.2"), 60)
        say("   unpinned: %s deployed, ReplicaSet %s" % (v12[:7], got["current"]))
        say("4. Ctrl-C")
        ctrl_c(up, work, cluster_dir(home), check=True)
        up = None

        say("5. make up-kube again on the same state (a new, empty cluster): hello-kube is put back")
        up = start(env, ready)
        got = wait_for("the Deployment healed back at hello:1.2", lambda: rolled_out("registry.example.invalid/hello:1.2"), 120)
        say("   rolled out again: ReplicaSet %s (Ferry healed the missing objects in their apply order)" % got["current"])
        say("6. Ctrl-C")
        ctrl_c(up, work, cluster_dir(home), check=True)
        up = None
        ok = True
    finally:
        if up is not None:
            say("   stopping")
            ctrl_c(up, work, cluster_dir(home), check=False)
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            say("   state kept for inspection in " + work)


if __name__ == "__main__":
    main()
