#!/usr/bin/env bash
# Alerting for real: starts Ferry as `make up` does (fresh state, shifted
# ports), Debian's prometheus loading Ferry's alert rules
# (helm/ferry/files/ferry-alerts.rules.yml, the file the chart and compose
# ship) and Debian's prometheus-alertmanager routing every alert to a webhook
# receiver this test runs, all on loopback with 1-second scrape and
# evaluation intervals. Then breaks two deployments with one `git push` to
# the example repository: a new application `broken` whose health check can
# never pass (its first deployment fails, nothing to roll back to) and the
# example's `hello` with a failing health check (rolled back to v1). Checks
# that the receiver gets FerryDeploymentFailed for broken/local and
# FerryDeploymentRolledBack for hello/local, and that nothing fired before
# the push (the example's successful deploy is not an alert). Also checks
# that the planner reports hello's plan for prod as waiting for approval.
#   alerting_test.sh <repo-root> <build-dir>
set -euo pipefail
root=${1:?}; build=${2:?}
off=470
work=$(mktemp -d /tmp/ferry-alerting-test.XXXXXX)
chmod 755 "$work"
up_pid=""; prom_pid=""; am_pid=""; hook_pid=""
cleanup() {
  set +e  # a helper killed by SIGTERM makes `wait` fail: stop everything regardless
  local p
  for p in "$prom_pid" "$am_pid" "$hook_pid"; do
    [[ -n "$p" ]] && { kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; }
  done
  if [[ -n "$up_pid" ]]; then kill -TERM -- "-$up_pid" 2>/dev/null || true; wait "$up_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM  # a ctest timeout still stops everything this test started
fail() {
  echo "FAIL: $*" >&2
  for f in up.log prometheus.log alertmanager.log receiver.log; do
    echo "--- $f" >&2; tail -n 20 "$work/$f" >&2 || true
  done
  echo "--- alerts received" >&2; cat "$work/received.jsonl" >&2 2>/dev/null || true
  exit 1
}
for tool in prometheus prometheus-alertmanager; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/install-alertmanager, run by make test)"
done

FERRY_CONFIG="$work/ferry-config.yaml" FERRY_HOME="$work/ferry" FERRY_PORT_OFFSET=$off FERRY_READY_FILE="$work/ready" FERRY_BUILD_DIR="$build" \
  setsid "$root/scripts/ferry-up" >"$work/up.log" 2>&1 &
up_pid=$!

# The webhook receiver: every POST body, one JSON document a line.
hook_port=$("$root/scripts/free-port")
/usr/bin/python3 -I -S -c '
import http.server, json, sys
out = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(out, "a") as f:
            f.write(json.dumps(json.loads(body)) + "\n")
        self.send_response(200); self.end_headers()
    def log_message(self, *a):
        sys.stderr.write((a[0] % a[1:]) + "\n")
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
' "$hook_port" "$work/received.jsonl" >"$work/receiver.log" 2>&1 &
hook_pid=$!
touch "$work/received.jsonl"

am_port=$("$root/scripts/free-port")
cat >"$work/alertmanager.yml" <<YAML
route:
  receiver: test
  group_by: [alertname, application, environment]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test
    webhook_configs:
      - url: http://127.0.0.1:$hook_port/alerts
        send_resolved: true
YAML
# --cluster.listen-address= : no gossip port (loopback only, one instance).
prometheus-alertmanager --config.file="$work/alertmanager.yml" --storage.path="$work/am" \
  --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= >"$work/alertmanager.log" 2>&1 &
am_pid=$!

prom_port=$("$root/scripts/free-port")
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $root/helm/ferry/files/ferry-alerts.rules.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:$am_port"]
scrape_configs:
  - job_name: ferry
    static_configs:
      - targets: ["127.0.0.1:$((9101 + off))", "127.0.0.1:$((9102 + off))", "127.0.0.1:$((9103 + off))", "127.0.0.1:$((9104 + off))"]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
prom_pid=$!

for _ in $(seq 240); do [[ -f "$work/ready" ]] && break; kill -0 "$up_pid" 2>/dev/null || fail "ferry-up exited"; sleep 1; done
[[ -f "$work/ready" ]] || fail "Ferry did not come up with the example deployed"
echo "ferry: up after ${SECONDS}s"

query() {  # prints the number of series in the result of a PromQL query
  curl -fsS -G "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" |
    /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["result"]))'
}
ok=""
for _ in $(seq 60); do
  ups=$(query 'up{job="ferry"} == 1' 2>/dev/null || echo 0)
  rules=$(curl -fsS "http://127.0.0.1:$prom_port/api/v1/rules" 2>/dev/null |
          /usr/bin/python3 -c 'import json,sys; print(sum(len(g["rules"]) for g in json.load(sys.stdin)["data"]["groups"]))' 2>/dev/null || echo 0)
  ams=$(curl -fsS "http://127.0.0.1:$prom_port/api/v1/alertmanagers" 2>/dev/null |
        /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["activeAlertmanagers"]))' 2>/dev/null || echo 0)
  succeeded=$(query 'ferry_deployment_last_result_timestamp_seconds{application="hello",environment="local",result="succeeded"}' 2>/dev/null || echo 0)
  if [[ "$ups" == 4 && "$rules" -ge 8 && "$ams" == 1 && "$succeeded" == 1 ]]; then ok=1; break; fi
  sleep 1
done
[[ -n "$ok" ]] || fail "prometheus: $ups/4 targets up, $rules rules loaded, $ams alertmanagers, hello's success seen: $succeeded"
echo "prometheus: 4/4 targets up, $rules rules loaded, alertmanager found, hello's successful deploy scraped"
# The example's prod needs manual approval: hello's plan for prod waits, and
# the planner's ApprovalWaitMonitor (every 15 s) reports it.
waiting=0
for _ in $(seq 40); do
  waiting=$(query 'ferry_plans_awaiting_approval{application="hello",environment="prod"} == 1 and on (application, environment) ferry_plan_approval_wait_seconds >= 0' 2>/dev/null || echo 0)
  [[ "$waiting" == 1 ]] && break
  sleep 1
done
[[ "$waiting" == 1 ]] || fail "prometheus has no plan of hello waiting for approval in prod"
echo "prometheus: hello's plan for prod is waiting for approval (ferry_plans_awaiting_approval)"
sleep 3  # a few evaluations with the successful deploy in view
[[ -s "$work/received.jsonl" ]] && fail "alerts were delivered before anything failed"

# One push breaks two deployments.
git clone -q "$work/ferry/repos/example.git" "$work/clone"
mkdir -p "$work/clone/apps/broken"
cat >"$work/clone/apps/broken/process.yaml" <<'YAML'
# Never healthy: nothing answers on the admin port the health check probes.
apiVersion: ferry.dev/v1
kind: Process
metadata:
  name: broken
spec:
  command: ["/bin/sleep", "600"]
  ports:
    - name: admin
  healthCheck:
    http: {port: admin, path: /healthz, expectedStatus: 200}
    periodSeconds: 0.25
    timeoutSeconds: 1
    failureThreshold: 2
YAML
cat >>"$work/clone/ferry.yaml" <<'YAML'
  broken:
    path: apps/broken
    render: plain
    environments: [local]
    sync:
      automated: true
    healthTimeout: 3s
YAML
sed -i 's/{name: APP_HEALTHY, value: "true"}/{name: APP_HEALTHY, value: "false"}/; s/value: v1}/value: v2}/' \
  "$work/clone/apps/hello/process.yaml"
git -C "$work/clone" diff --quiet apps/hello/process.yaml && fail "the edit of hello changed nothing"
git -C "$work/clone" add -A
git -C "$work/clone" -c user.name="Alerting Test" -c user.email=alerting@example.invalid commit -qm "break broken and hello"
pushed=$(date +%s.%N)
git -C "$work/clone" push -q origin HEAD:main || fail "git push"

received() {  # alertname application environment: prints the seconds from the push to its delivery, or nothing
  /usr/bin/python3 - "$work/received.jsonl" "$1" "$2" "$3" <<'PY'
import json, sys
path, name, app, env = sys.argv[1:]
for line in open(path):
    doc = json.loads(line)
    for a in doc.get("alerts", []):
        l = a.get("labels", {})
        if a.get("status") == "firing" and l.get("alertname") == name and l.get("application") == app \
                and l.get("environment") == env:
            print(a["annotations"]["summary"])
            sys.exit(0)
PY
}
failed=""; rolled=""
for _ in $(seq 240); do
  failed=$(received FerryDeploymentFailed broken local)
  rolled=$(received FerryDeploymentRolledBack hello local)
  [[ -n "$failed" && -n "$rolled" ]] && break
  sleep 0.5
done
took=$(/usr/bin/python3 -c "import sys,time; print('%.1f' % (time.time() - float(sys.argv[1])))" "$pushed")
[[ -n "$failed" ]] || fail "no FerryDeploymentFailed for broken/local reached the receiver within 120 s of the push"
[[ -n "$rolled" ]] || fail "no FerryDeploymentRolledBack for hello/local reached the receiver within 120 s of the push"
echo "receiver: FerryDeploymentFailed \"$failed\""
echo "receiver: FerryDeploymentRolledBack \"$rolled\""
echo "both delivered ${took}s after git push"
# Nothing else fired: the rolled-back hello is not also "failed", the
# successful rollback deployment is not an alert.
others=$(/usr/bin/python3 - "$work/received.jsonl" <<'PY'
import json, sys
seen = set()
for line in open(sys.argv[1]):
    for a in json.loads(line).get("alerts", []):
        l = a["labels"]
        seen.add((l["alertname"], l.get("application", ""), l.get("environment", "")))
print(" ".join("%s/%s/%s" % k for k in sorted(seen - {("FerryDeploymentFailed", "broken", "local"),
                                                       ("FerryDeploymentRolledBack", "hello", "local")})))
PY
)
[[ -z "$others" ]] || fail "unexpected alerts delivered: $others"
echo PASS
