#!/usr/bin/env bash
# The chart installed for real (`helm install`) into the test bed's
# kube-apiserver (the `kube` ctest fixture): every object accepted by the
# server's own validation and admission, and the wiring checked on the objects
# as the server stored them (packaging_checks.py wiring): each peer address
# names a Service that selects that peer's pods on its gRPC port, every
# mounted Secret/ConfigMap/claim exists, ServiceAccounts and RBAC namespaced,
# no wildcards. The deployer's RBAC in its target namespaces is checked with
# `kubectl auth can-i --as=system:serviceaccount:...` and with a real
# server-side apply under the deployer's own token.
#   helm_install_kube_test.sh <case> <repo-root>     (FERRY_TEST_KUBE_STATE set by ctest)
# Cases: trial (bundled PostgreSQL, one Secret of certificates, RBAC for two
# target namespaces, then cluster rules added by `helm upgrade`) and
# production (values-production.yaml; cert-manager, the ServiceMonitor and the PrometheusRule off,
# as their CRDs are not in the bed).
set -euo pipefail
case_name=${1:?}; root=${2:?}
state=${FERRY_TEST_KUBE_STATE:?run through ctest (the kube fixture)}
export KUBECONFIG="$state/kubeconfig"
[[ -s "$KUBECONFIG" ]] || { echo "FAIL: no kubeconfig at $KUBECONFIG (is the kube fixture running?)" >&2; exit 1; }
helm="$root/.tools/bin/helm"; kubectl="$root/.tools/bin/kubectl"
chart="$root/helm/ferry"
check=(/usr/bin/python3 "$root/tests/packaging/packaging_checks.py")
fail() { echo "FAIL: $*" >&2; exit 1; }
work=$(mktemp -d)
export HELM_CACHE_HOME="$work/helm-cache" HELM_CONFIG_HOME="$work/helm-config" HELM_DATA_HOME="$work/helm-data"
trap 'rm -rf "$work"' EXIT

# Namespaces unique to this run (no namespace controller runs, so a deleted
# namespace stays Terminating: never reuse a name).
suffix="$$-$RANDOM"
ns="ferry-$case_name-$suffix"

stored() {  # <release> <namespace>: the release's objects as the server stored them, and what pods may reference
  local manifest
  manifest=$("$helm" get manifest "$1" -n "$2") || fail "helm get manifest $1"
  # helm leaves the release namespace out of most objects; name it, so that
  # kubectl asks for each object where helm put it (Roles name their own).
  printf '%s\n' "$manifest" | /usr/bin/python3 -c '
import sys, yaml
docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
for d in docs:
    d["metadata"].setdefault("namespace", sys.argv[1])
print(yaml.safe_dump_all(docs))' "$2" | "$kubectl" get -f - -o yaml || fail "kubectl get of the release's objects"
  echo "---"
  "$kubectl" get secrets,configmaps,persistentvolumeclaims,serviceaccounts -n "$2" -o yaml
}

can() {  # <namespace|-> <verb> <resource> [account]: the deployer's account may (- : cluster scope)
  local who=system:serviceaccount:$ns:${4:-ferry-deployer} where=(-n "$1")
  [[ "$1" == - ]] && where=()
  "$kubectl" auth can-i "$2" "$3" "${where[@]}" --as="$who" >/dev/null ||
    fail "$who cannot $2 $3 ${where[*]} ($("$kubectl" auth can-i "$2" "$3" "${where[@]}" --as="$who" 2>&1))"
}
cannot() {  # <namespace|-> <verb> <resource> [account]: the account may not (- : cluster scope)
  local who=system:serviceaccount:$ns:${4:-ferry-deployer} where=(-n "$1")
  [[ "$1" == - ]] && where=()
  if "$kubectl" auth can-i "$2" "$3" "${where[@]}" --as="$who" >/dev/null 2>&1; then
    fail "$who may $2 $3 ${where[*]}"
  fi
}

secrets_for_trial() {  # <namespace>: the Secrets a secure install needs, as scripts/ferry-certs makes them
  local certs="$work/certs"
  "$root/scripts/ferry-certs" "$certs" >/dev/null
  local files=(--from-file=ca.pem="$certs/ca.pem")
  for s in audit planner deployer repo-watcher notifier; do
    files+=(--from-file="$s.pem=$certs/$s.pem" --from-file="$s-key.pem=$certs/$s-key.pem")
  done
  "$kubectl" create secret generic ferry-tls -n "$1" "${files[@]}" >/dev/null
  openssl rand -hex 32 >"$work/token.key"
  echo "ferry_$(openssl rand -hex 6)_$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n' | cut -c1-43)" >"$work/admin.token"
  "$kubectl" create secret generic ferry-auth -n "$1" --from-file=token.key="$work/token.key" \
    --from-file=admin.token="$work/admin.token" >/dev/null
  openssl genpkey -algorithm ed25519 -out "$work/checkpoint.pem" 2>/dev/null
  "$kubectl" create secret generic ferry-audit-key -n "$1" --from-file=checkpoint.pem="$work/checkpoint.pem" >/dev/null
}

case "$case_name" in
  trial)
    targets=("apps-a-$suffix" "apps-b-$suffix")
    for n in "$ns" "${targets[@]}" "other-$suffix"; do "$kubectl" create namespace "$n" >/dev/null; done
    secrets_for_trial "$ns"
    values=(--set tls.existingSecret=ferry-tls --set tokenKey.existingSecret=ferry-auth
            --set bootstrapAdminToken.existingSecret=ferry-auth
            --set services.audit.checkpointKey.existingSecret=ferry-audit-key
            --set rbac.create=true --set "rbac.targetNamespaces={${targets[0]},${targets[1]}}")
    # Every object through the server's validation; helm fails on the first refusal.
    "$helm" install ferry "$chart" -n "$ns" "${values[@]}" >"$work/install.out" 2>&1 ||
      { cat "$work/install.out" >&2; fail "helm install (trial values)"; }
    stored ferry "$ns" >"$work/stored.yaml"
    grep -q 'kind: StatefulSet' "$work/stored.yaml" || fail "the bundled PostgreSQL is not stored"
    "${check[@]}" wiring --namespace "$ns" --release ferry --target-namespaces "${targets[0]},${targets[1]}" \
      <"$work/stored.yaml" || fail "wiring of the installed release"

    # The checker itself, on the stored objects with one mistake each: the
    # planner calling 127.0.0.1 for the deployer (the bug #18 names), a
    # Service selecting no pods, a Secret that does not exist.
    mutate() {  # <sed expression> <what>: the check must fail on the mutated objects
      local m
      m=$(sed "$1" "$work/stored.yaml")
      [[ "$m" != "$(cat "$work/stored.yaml")" ]] || fail "test bug: the mutation '$2' did not apply"
      if "${check[@]}" wiring --namespace "$ns" --release ferry --target-namespaces "${targets[0]},${targets[1]}" \
           <<<"$m" 2>"$work/mutated.err"; then
        fail "the wiring check passed with $2"
      fi
      echo "wiring check refused $2: $(head -n 1 "$work/mutated.err")"
    }
    mutate 's|--deployer-address=ferry-deployer:7003|--deployer-address=127.0.0.1:7003|' "the deployer address at 127.0.0.1"
    mutate 's|--repo-watcher-address=ferry-repo-watcher:7001|--repo-watcher-address=ferry-planner:7002|' \
      "the repo-watcher address naming the planner's Service"
    mutate 's|--audit-address=ferry-audit:7004|--audit-address=ferry-audit:7005|' "an audit port no Service has"
    # (a Service's selector is the only "selector:" whose next line is a label)
    mutate '/^    selector:$/{n;s/^      app.kubernetes.io\/component: audit$/      app.kubernetes.io\/component: auditor/}' \
      "a Service selecting no pods"
    mutate 's|secretName: ferry-audit-key$|secretName: ferry-audit-key-missing|' "a mounted Secret that does not exist"

    # The deployer's RBAC, as the server decides it.
    for t in "${targets[@]}"; do
      for verb in get list watch create patch update delete; do
        for res in deployments.apps configmaps secrets services statefulsets.apps jobs.batch ingresses.networking.k8s.io; do
          can "$t" "$verb" "$res"
        done
      done
      for verb in get list watch; do can "$t" "$verb" pods; can "$t" "$verb" replicasets.apps; done
      cannot "$t" create pods
      cannot "$t" delete pods
      cannot "$t" create pods/exec
      cannot "$t" get secrets ferry-planner   # other components: nothing
      cannot "$t" list configmaps ferry-audit
    done
    cannot "other-$suffix" create deployments.apps
    cannot "other-$suffix" get secrets
    cannot "$ns" get secrets                  # not a target: its own namespace's Secrets are out of reach
    cannot kube-system list configmaps
    cannot - create namespaces
    cannot - list nodes
    cannot - create customresourcedefinitions.apiextensions.k8s.io
    cannot - create clusterroles.rbac.authorization.k8s.io
    "$kubectl" auth can-i '*' '*' -n "${targets[0]}" --as="system:serviceaccount:$ns:ferry-deployer" >/dev/null 2>&1 &&
      fail "the deployer may do anything in ${targets[0]}"

    # What the Kubernetes target will do, under the deployer's own token:
    # server-side apply (and its dry run) into a target namespace, refused in another.
    token=$("$kubectl" create token ferry-deployer -n "$ns" --duration=10m) || fail "no token for ferry-deployer"
    server=$(cat "$state/server")
    as_deployer=("$kubectl" --kubeconfig /dev/null --server "$server" --certificate-authority "$state/ca.crt" --token "$token")
    app() {  # <namespace>
      printf 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: %s}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: registry.invalid/web:1}]}\n' "$1"
    }
    app "${targets[0]}" | "${as_deployer[@]}" apply --server-side --field-manager=ferry --dry-run=server -f - >/dev/null ||
      fail "the deployer's dry-run server-side apply in ${targets[0]}"
    app "${targets[0]}" | "${as_deployer[@]}" apply --server-side --field-manager=ferry -f - >/dev/null ||
      fail "the deployer's server-side apply in ${targets[0]}"
    "${as_deployer[@]}" delete deployment web -n "${targets[0]}" --cascade=foreground --wait=false >/dev/null ||
      fail "the deployer's delete (prune) in ${targets[0]}"
    if app "other-$suffix" | "${as_deployer[@]}" apply --server-side --field-manager=ferry -f - >"$work/denied" 2>&1; then
      fail "the deployer applied into other-$suffix, not a target namespace"
    fi
    grep -q forbidden "$work/denied" || fail "the refusal in other-$suffix is not RBAC's: $(cat "$work/denied")"

    # Cluster-scoped kinds only when asked: namespaces through helm upgrade.
    "$helm" upgrade ferry "$chart" -n "$ns" "${values[@]}" \
      --set 'rbac.clusterRules[0].apiGroups[0]=' --set 'rbac.clusterRules[0].resources[0]=namespaces' \
      --set 'rbac.clusterRules[0].verbs={get,list,watch,create,patch,update}' >"$work/upgrade.out" 2>&1 ||
      { cat "$work/upgrade.out" >&2; fail "helm upgrade with rbac.clusterRules"; }
    can - create namespaces
    cannot - delete namespaces
    cannot - create customresourcedefinitions.apiextensions.k8s.io
    stored ferry "$ns" | "${check[@]}" wiring --namespace "$ns" --release ferry --cluster-rules \
      --target-namespaces "${targets[0]},${targets[1]}" || fail "wiring after the upgrade"
    # A wildcard is refused before anything reaches the server.
    if "$helm" upgrade ferry "$chart" -n "$ns" "${values[@]}" --set 'rbac.clusterRules[0].apiGroups[0]=' \
         --set 'rbac.clusterRules[0].resources[0]=*' --set 'rbac.clusterRules[0].verbs[0]=get' >/dev/null 2>&1; then
      fail "helm upgrade accepted a wildcard resource"
    fi
    "$helm" uninstall ferry -n "$ns" >/dev/null || fail "helm uninstall"
    [[ -z "$("$kubectl" get roles -n "${targets[0]}" -o name)" ]] || fail "uninstall left the Role in ${targets[0]}"
    ;;
  production)
    "$kubectl" create namespace "$ns" >/dev/null
    # What values-production.yaml expects to exist beside the release.
    # One URL per role (values-production.yaml: database.perServiceRoles).
    "$kubectl" create secret generic ferry-database -n "$ns" \
      $(for r in migrator repo-watcher planner deployer audit notifier; do
          echo "--from-literal=$r-url=postgresql://ferry_${r//-/_}@db.example.invalid:5432/ferry"
        done) >/dev/null
    openssl rand -hex 32 >"$work/token.key"
    echo "ferry_$(openssl rand -hex 6)_$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n' | cut -c1-43)" >"$work/admin.token"
    "$kubectl" create secret generic ferry-auth -n "$ns" --from-file=token.key="$work/token.key" \
      --from-file=admin.token="$work/admin.token" >/dev/null
    openssl genpkey -algorithm ed25519 -out "$work/checkpoint.pem" 2>/dev/null
    "$kubectl" create secret generic ferry-audit-checkpoint-key -n "$ns" --from-file=checkpoint.pem="$work/checkpoint.pem" >/dev/null
    openssl pkey -in "$work/checkpoint.pem" -pubout -out "$work/old.pub"
    "$kubectl" create configmap ferry-audit-trusted-keys -n "$ns" --from-file=old.pub="$work/old.pub" >/dev/null
    "$kubectl" create secret generic ferry-repo-secrets -n "$ns" --from-literal=github-token=t0k3n >/dev/null
    printf 'apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: ferry-audit-witness, namespace: %s}\nspec:\n  accessModes: [ReadWriteMany]\n  resources: {requests: {storage: 1Gi}}\n' "$ns" |
      "$kubectl" apply -f - >/dev/null
    # Certificates from one Secret per service (cert-manager's CRDs are not in the bed).
    certs="$work/certs"
    "$root/scripts/ferry-certs" "$certs" >/dev/null
    per_service=()
    for s in repoWatcher planner deployer audit notifier; do
      file=$(sed 's/W/-w/' <<<"$s")
      "$kubectl" create secret generic "tls-$file" -n "$ns" --type=kubernetes.io/tls --from-file=ca.crt="$certs/ca.pem" \
        --from-file=tls.crt="$certs/$file.pem" --from-file=tls.key="$certs/$file-key.pem" >/dev/null
      per_service+=(--set "services.$s.tls.existingSecret=tls-$file")
    done
    "$helm" install ferry "$chart" -n "$ns" -f "$chart/values-production.yaml" --set tls.certManager.enabled=false \
      --set serviceMonitor.enabled=false --set prometheusRule.enabled=false "${per_service[@]}" >"$work/install.out" 2>&1 ||
      { cat "$work/install.out" >&2; fail "helm install (production values)"; }
    stored ferry "$ns" >"$work/stored.yaml"
    for kind in NetworkPolicy PodDisruptionBudget Role RoleBinding; do
      grep -q "^  kind: $kind\$" "$work/stored.yaml" || fail "production install stored no $kind"
    done
    grep -q 'kind: StatefulSet' "$work/stored.yaml" && fail "production install bundled PostgreSQL"
    "${check[@]}" wiring --namespace "$ns" --release ferry <"$work/stored.yaml" || fail "wiring of the production release"
    [[ $("$kubectl" get deployment ferry-planner -n "$ns" -o jsonpath='{.spec.replicas}') == 2 ]] ||
      fail "the planner is not at 2 replicas"
    can "$ns" patch deployments.apps
    cannot "$ns" create pods
    "$helm" uninstall ferry -n "$ns" >/dev/null || fail "helm uninstall"
    ;;
  *) fail "unknown case $case_name" ;;
esac
"$kubectl" delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
echo "PASS: $case_name"
