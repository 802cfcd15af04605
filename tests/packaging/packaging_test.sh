#!/usr/bin/env bash
# Packaging checks with the real tools: helm lint/template on the chart (default
# and production-like values), every rendered object parses (kubectl offline),
# values.schema.json refuses bad values, and the compose file validates.
#   packaging_test.sh <case> <repo-root>
set -euo pipefail
case_name=${1:?}; root=${2:?}
helm="$root/.tools/bin/helm"; kubectl="$root/.tools/bin/kubectl"
chart="$root/helm/ferry"
fail() { echo "FAIL: $*" >&2; exit 1; }

render_and_parse() {  # values-args...; prints kind/name lines
  local out
  out=$("$helm" template ferry "$chart" --namespace ferry "$@") || fail "helm template $*"
  printf '%s\n' "$out" | "$kubectl" label --local -f - -o name checked=yes || fail "rendered objects do not parse ($*)"
}

case "$case_name" in
  helm_lint)
    "$helm" lint --strict "$chart" || fail "lint default values"
    "$helm" lint --strict "$chart" -f "$chart/values-production.yaml" || fail "lint production values"
    ;;
  helm_default)
    names=$(render_and_parse)
    echo "$names"
    for want in deployment.apps/ferry-repo-watcher deployment.apps/ferry-planner deployment.apps/ferry-deployer \
                deployment.apps/ferry-audit service/ferry-audit statefulset.apps/ferry-postgresql \
                configmap/ferry-dashboard serviceaccount/ferry; do
      grep -qx "$want" <<<"$names" || fail "default render lacks $want"
    done
    rendered=$("$helm" template ferry "$chart")
    grep -q 'grpc:' <<<"$rendered" || fail "no native gRPC probes"
    grep -q 'readOnlyRootFilesystem: true' <<<"$rendered" || fail "no restricted securityContext"
    ;;
  helm_production)
    names=$(render_and_parse -f "$chart/values-production.yaml")
    echo "$names"
    for want in networkpolicy.networking.k8s.io/ferry poddisruptionbudget.policy/ferry-audit \
                servicemonitor.monitoring.coreos.com/ferry role.rbac.authorization.k8s.io/ferry-deployer \
                rolebinding.rbac.authorization.k8s.io/ferry-deployer; do
      grep -qx "$want" <<<"$names" || fail "production render lacks $want"
    done
    grep -q statefulset <<<"$names" && fail "production render must not bundle PostgreSQL"
    rendered=$("$helm" template ferry "$chart" -f "$chart/values-production.yaml")
    grep -q 'name: ferry-database' <<<"$rendered" || fail "database URL not taken from the existing Secret"
    ;;
  helm_schema)
    if "$helm" template ferry "$chart" --set logLevel=loud >/dev/null 2>&1; then fail "schema accepted logLevel=loud"; fi
    if "$helm" template ferry "$chart" --set services.audit.grpcPort=70000 >/dev/null 2>&1; then
      fail "schema accepted a port of 70000"
    fi
    if "$helm" template ferry "$chart" --set postgresql.enabled=false >/dev/null 2>&1; then
      fail "rendered with no database configured"
    fi
    ;;
  compose)
    docker-compose -f "$root/compose/docker-compose.yml" config -q || fail "compose file does not validate"
    ;;
  *) fail "unknown case $case_name" ;;
esac
echo "PASS: $case_name"
