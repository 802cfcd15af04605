#!/usr/bin/env bash
# Prometheus for real: starts Ferry as `make up` does (fresh state, shifted
# ports), starts Debian's prometheus on loopback scraping the four services,
# and checks that every target is up and that Ferry's deployment metrics
# arrive after the example's deploy. Also checks that the Grafana dashboard
# uses only metric names the services register, against live /metrics dumps.
#   prometheus_test.sh <repo-root> <build-dir>
set -euo pipefail
root=${1:?}; build=${2:?}
off=400
work=$(mktemp -d /tmp/ferry-prom-test.XXXXXX)
chmod 755 "$work"
up_pid=""; prom_pid=""
cleanup() {
  [[ -n "$prom_pid" ]] && kill "$prom_pid" 2>/dev/null && wait "$prom_pid" 2>/dev/null
  if [[ -n "$up_pid" ]]; then kill -TERM -- "-$up_pid" 2>/dev/null || true; wait "$up_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -n 30 "$work/up.log" >&2 || true; exit 1; }

FERRY_CONFIG="$work/ferry-config.yaml" FERRY_HOME="$work/ferry" FERRY_PORT_OFFSET=$off FERRY_READY_FILE="$work/ready" FERRY_BUILD_DIR="$build" \
  setsid "$root/scripts/ferry-up" >"$work/up.log" 2>&1 &
up_pid=$!

prom_port=$("$root/scripts/free-port")
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
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

query() {  # prints the number of series in the result of a PromQL query
  curl -fsS -G "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" |
    /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["result"]))'
}
ok=""
for _ in $(seq 60); do
  ups=$(query 'up{job="ferry"} == 1' 2>/dev/null || echo 0)
  deployed=$(query 'ferry_deployments_total{result="succeeded"} > 0' 2>/dev/null || echo 0)
  if [[ "$ups" == 4 && "$deployed" -ge 1 ]]; then ok=1; break; fi
  sleep 1
done
[[ -n "$ok" ]] || fail "prometheus saw $ups/4 targets up and $deployed series of succeeded deployments"
echo "prometheus: 4/4 targets up; ferry_deployments_total{result=\"succeeded\"} present"
for m in ferry_deployment_duration_seconds_count ferry_health_checks_total ferry_revisions_total ferry_plans_total \
         ferry_audit_events_appended_total ferry_outbox_backlog ferry_git_requests_total; do
  # Each target is scraped on its own schedule: a series that appeared
  # since a target's last scrape arrives with its next one.
  for _ in $(seq 15); do [[ $(query "$m" 2>/dev/null || echo 0) -ge 1 ]] && break; sleep 1; done
  [[ $(query "$m") -ge 1 ]] || fail "prometheus has no $m after a deploy"
  echo "prometheus: $m present"
done

dumps=()
for p in 9101 9102 9103 9104; do
  curl -fsS "http://127.0.0.1:$((p + off))/metrics" >"$work/metrics-$p.txt"
  dumps+=("$work/metrics-$p.txt")
done
/usr/bin/python3 "$root/tests/packaging/dashboard_metrics_test.py" "$root" "${dumps[@]}" || fail "dashboard metrics"
echo PASS
