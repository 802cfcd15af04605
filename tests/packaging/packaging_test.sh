#!/usr/bin/env bash
# Packaging checks with the real tools: helm lint/template on the chart (trial
# and production-like values), every rendered object parses (kubectl offline),
# values.schema.json refuses bad values, TLS, access policy, ServiceAccounts and
# RBAC are as docs/security.md says (packaging_checks.py reads the rendered
# objects), the least-privilege flags (#17: a persistent audit checkpoint key,
# trusted keys, the witness, the repo-watcher's secrets directory, the
# deployer's allowed roots and workload user) are wired to the right mounts,
# the compose file validates and its one-shot `certs` service's script makes
# what the services need.
#   packaging_test.sh <case> <repo-root>
set -euo pipefail
case_name=${1:?}; root=${2:?}
helm="$root/.tools/bin/helm"; kubectl="$root/.tools/bin/kubectl"
chart="$root/helm/ferry"
check=(/usr/bin/python3 "$root/tests/packaging/packaging_checks.py")
fail() { echo "FAIL: $*" >&2; exit 1; }
# The least a secure install needs: one Secret with the suite's certificates
# (as scripts/ferry-certs makes them), one with the token key and the first
# admin token, and a persistent audit checkpoint key.
key=(--set services.audit.checkpointKey.existingSecret=ferry-audit-key)
secure=(--set tls.existingSecret=ferry-tls --set tokenKey.existingSecret=ferry-auth
        --set bootstrapAdminToken.existingSecret=ferry-auth "${key[@]}")
# Development: no TLS, no authentication, and (explicitly) an ephemeral key.
dev=(--set devInsecure=true --set services.audit.trialEphemeralKey=true)

render() {  # helm template args...; fails the test when helm does
  "$helm" template ferry "$chart" --namespace ferry "$@" || fail "helm template $*"
}
refused() {  # want-in-message helm-template-args...: the chart must refuse to render
  local want=$1 out; shift
  if out=$("$helm" template ferry "$chart" --namespace ferry "$@" 2>&1); then fail "rendered with $*"; fi
  grep -qF -- "$want" <<<"$out" || fail "refusal of $* does not say '$want': $out"
}
notes() {  # NOTES.txt as helm install prints it, offline
  "$helm" install ferry "$chart" --namespace ferry --dry-run=client "$@" | sed -n '/^NOTES:/,$p'
}

render_and_parse() {  # values-args...; prints kind/name lines
  local out
  out=$("$helm" template ferry "$chart" --namespace ferry "$@") || fail "helm template $*"
  printf '%s\n' "$out" | "$kubectl" label --local -f - -o name checked=yes || fail "rendered objects do not parse ($*)"
}

case "$case_name" in
  helm_lint)
    "$helm" lint --strict "$chart" "${secure[@]}" || fail "lint trial values"
    "$helm" lint --strict "$chart" -f "$chart/values-production.yaml" || fail "lint production values"
    "$helm" lint --strict "$chart" "${dev[@]}" || fail "lint devInsecure values"
    ;;
  helm_default)
    names=$(render_and_parse "${secure[@]}")
    echo "$names"
    for want in deployment.apps/ferry-repo-watcher deployment.apps/ferry-planner deployment.apps/ferry-deployer \
                deployment.apps/ferry-audit service/ferry-audit statefulset.apps/ferry-postgresql \
                configmap/ferry-dashboard configmap/ferry-access-policy serviceaccount/ferry-audit \
                serviceaccount/ferry-planner serviceaccount/ferry-deployer serviceaccount/ferry-repo-watcher; do
      grep -qx "$want" <<<"$names" || fail "default render lacks $want"
    done
    rendered=$(render "${secure[@]}")
    # The kubelet's gRPC probe cannot speak TLS: with TLS on, probes connect.
    grep -q 'grpc:' <<<"$rendered" && fail "native gRPC probes against a TLS port"
    grep -q 'tcpSocket:' <<<"$rendered" || fail "no probes on the gRPC port"
    grep -q 'grpc:' <<<"$(render "${dev[@]}")" || fail "no native gRPC probes with devInsecure"
    grep -q 'readOnlyRootFilesystem: true' <<<"$rendered" || fail "no restricted securityContext"
    ;;
  helm_production)
    names=$(render_and_parse -f "$chart/values-production.yaml")
    echo "$names"
    for want in networkpolicy.networking.k8s.io/ferry poddisruptionbudget.policy/ferry-audit \
                servicemonitor.monitoring.coreos.com/ferry prometheusrule.monitoring.coreos.com/ferry \
                role.rbac.authorization.k8s.io/ferry-deployer \
                rolebinding.rbac.authorization.k8s.io/ferry-deployer; do
      grep -qx "$want" <<<"$names" || fail "production render lacks $want"
    done
    grep -q statefulset <<<"$names" && fail "production render must not bundle PostgreSQL"
    for want in certificate.cert-manager.io/ferry-planner configmap/ferry-access-policy; do
      grep -qx "$want" <<<"$names" || fail "production render lacks $want"
    done
    rendered=$("$helm" template ferry "$chart" -f "$chart/values-production.yaml")
    grep -q 'name: ferry-database' <<<"$rendered" || fail "database URL not taken from the existing Secret"
    ;;
  helm_schema)
    if "$helm" template ferry "$chart" --set logLevel=loud >/dev/null 2>&1; then fail "schema accepted logLevel=loud"; fi
    if "$helm" template ferry "$chart" --set services.audit.grpcPort=70000 >/dev/null 2>&1; then
      fail "schema accepted a port of 70000"
    fi
    if "$helm" template ferry "$chart" "${secure[@]}" --set postgresql.enabled=false >/dev/null 2>&1; then
      fail "rendered with no database configured"
    fi
    render "${secure[@]}" >/dev/null
    refused "devInsecure" --set-string devInsecure=yes
    refused "rbac" "${secure[@]}" --set rbac.create=true --set 'rbac.rules[0].apiGroups[0]=*' \
      --set 'rbac.rules[0].resources[0]=pods' --set 'rbac.rules[0].verbs[0]=get'
    refused "kind" "${secure[@]}" --set tls.certManager.enabled=true --set tls.certManager.issuerRef.name=ca \
      --set tls.certManager.issuerRef.kind=Bogus
    ;;
  helm_secure_by_default)
    # No certificates, no token key: no render, and no silent plaintext.
    refused "tls.existingSecret" --set tokenKey.existingSecret=ferry-auth "${key[@]}"
    refused "tls.existingSecret" "${key[@]}"
    refused "tokenKey.existingSecret" --set tls.existingSecret=ferry-tls "${key[@]}"
    refused "tls.certManager.issuerRef.name" --set tokenKey.existingSecret=ferry-auth --set tls.certManager.enabled=true \
      "${key[@]}"
    # No persistent checkpoint key: no render (and no key made in an emptyDir).
    refused "services.audit.checkpointKey.existingSecret" --set tls.existingSecret=ferry-tls \
      --set tokenKey.existingSecret=ferry-auth
    for values in "${secure[*]}" "-f $chart/values-production.yaml"; do
      # shellcheck disable=SC2086  # word splitting wanted: a list of helm args
      rendered=$(render $values)
      grep -q -- '--insecure-' <<<"$rendered" && fail "insecure flags without devInsecure ($values)"
      # shellcheck disable=SC2086
      printed=$(notes $values)
      grep -q -- '-plaintext' <<<"$printed" && fail "NOTES.txt shows grpcurl -plaintext ($values)"
      grep -q -- '-cacert ferry-ca.pem -H "authorization: Bearer $TOKEN"' <<<"$printed" ||
        fail "NOTES.txt does not show grpcurl with the CA and a token ($values): $printed"
    done
    ;;
  helm_insecure)
    render "${dev[@]}" | "${check[@]}" insecure || fail "devInsecure=true"
    printed=$(notes "${dev[@]}")
    grep -q 'WARNING: devInsecure=true' <<<"$printed" || fail "NOTES.txt does not warn about devInsecure: $printed"
    ;;
  helm_service_accounts)
    render "${secure[@]}" | "${check[@]}" service-accounts || fail "ServiceAccounts (trial values)"
    render -f "$chart/values-production.yaml" | "${check[@]}" service-accounts --deployer-token ||
      fail "ServiceAccounts (production values, RBAC on)"
    render "${secure[@]}" --set services.audit.enabled=false | "${check[@]}" service-accounts ||
      fail "ServiceAccounts (audit disabled)"
    ;;
  helm_rbac)
    render -f "$chart/values-production.yaml" | "${check[@]}" rbac --expect-roles 1 || fail "RBAC (production, Role)"
    render -f "$chart/values-production.yaml" --set rbac.clusterWide=true | "${check[@]}" rbac --expect-roles 1 ||
      fail "RBAC (production, ClusterRole)"
    render "${secure[@]}" | "${check[@]}" rbac --expect-roles 0 || fail "RBAC (trial: none)"
    # A Role and RoleBinding in each target namespace; cluster-scoped kinds
    # only through rbac.clusterRules (helm_install_trial checks them on a
    # real API server).
    targets=(--set rbac.create=true --set 'rbac.targetNamespaces={apps-a,apps-b}')
    render "${secure[@]}" "${targets[@]}" | "${check[@]}" rbac --expect-roles 2 || fail "RBAC (two target namespaces)"
    rendered=$(render "${secure[@]}" "${targets[@]}")
    for n in apps-a apps-b; do
      [[ $(grep -c "^  namespace: $n\$" <<<"$rendered") == 2 ]] || fail "no Role and RoleBinding in $n"
    done
    grep -q 'kind: ClusterRole' <<<"$rendered" && fail "a ClusterRole without rbac.clusterRules"
    names=$(render_and_parse "${secure[@]}" "${targets[@]}" --set 'rbac.clusterRules[0].apiGroups[0]=' \
      --set 'rbac.clusterRules[0].resources[0]=namespaces' --set 'rbac.clusterRules[0].verbs[0]=create')
    grep -qx clusterrole.rbac.authorization.k8s.io/ferry-deployer-cluster <<<"$names" ||
      fail "rbac.clusterRules rendered no ClusterRole: $names"
    refused "clusterRules" "${secure[@]}" "${targets[@]}" --set 'rbac.clusterRules[0].apiGroups[0]=' \
      --set 'rbac.clusterRules[0].resources[0]=*' --set 'rbac.clusterRules[0].verbs[0]=get'
    refused "targetNamespaces" "${secure[@]}" "${targets[@]}" --set 'rbac.targetNamespaces={Not_A_Name}'
    ;;
  helm_tls)
    trial=$(render "${secure[@]}")
    "${check[@]}" tls --bootstrap <<<"$trial" || fail "TLS and policy flags (one shared Secret)"
    render -f "$chart/values-production.yaml" | "${check[@]}" tls --bootstrap || fail "TLS and policy flags (cert-manager)"
    per_service=()
    for s in repoWatcher planner deployer audit notifier; do per_service+=(--set "services.$s.tls.existingSecret=tls-${s,,}"); done
    render --set tokenKey.existingSecret=ferry-auth "${key[@]}" "${per_service[@]}" --set accessPolicy.existingConfigMap=my-policy |
      "${check[@]}" tls || fail "TLS and policy flags (a Secret per service, own policy ConfigMap)"
    grep -q 'secretName: tls-planner' <<<"$(render --set tokenKey.existingSecret=ferry-auth "${key[@]}" "${per_service[@]}")" ||
      fail "a service's own Secret is not mounted"
    # The checker itself: a subPath policy mount (updates never seen) is refused.
    mutated=$(sed 's|^\( *\)mountPath: /etc/ferry/policy$|\1mountPath: /etc/ferry/policy/access-policy.yaml\n\1subPath: access-policy.yaml|' <<<"$trial")
    [[ "$mutated" != "$trial" ]] || fail "test bug: the mutation did not apply"
    if "${check[@]}" tls --bootstrap <<<"$mutated" 2>/dev/null; then fail "a subPath policy mount passed the check"; fi
    ;;
  helm_cert_manager)
    render -f "$chart/values-production.yaml" | "${check[@]}" cert-manager || fail "Certificates (production values)"
    "$helm" template rel "$chart" --namespace other -f "$chart/values-production.yaml" |
      "${check[@]}" cert-manager --release rel-ferry --namespace other || fail "Certificates (release rel, namespace other)"
    grep -q 'kind: Certificate' <<<"$(render "${secure[@]}")" && fail "Certificates rendered with cert-manager off"
    ;;
  helm_db_roles)
    roles=(/usr/bin/python3 "$root/tests/packaging/db_roles_check.py")
    render "${secure[@]}" | "${roles[@]}" bundled "$chart/files/db-roles.sql" || fail "bundled PostgreSQL roles"
    render "${secure[@]}" --set postgresql.enabled=false --set database.existingSecret=db \
      --set database.perServiceRoles.enabled=true | "${roles[@]}" external db || fail "external per-service roles"
    render "${secure[@]}" --set postgresql.enabled=false --set database.existingSecret=db |
      "${roles[@]}" single db url || fail "external single URL"
    # The checker itself: a service given the migrator's URL fails it.
    if render "${secure[@]}" | sed 's/key: planner-url/key: migrator-url/' | "${roles[@]}" bundled "$chart/files/db-roles.sql" 2>/dev/null; then
      fail "the checker passed a service with the migrator's URL"
    fi
    ;;
  helm_audit_key)
    conf=("${check[@]}" confinement)
    render "${secure[@]}" | "${conf[@]}" --key secret || fail "checkpoint key from a Secret"
    render "${secure[@]}" --set services.audit.checkpointKey.existingSecretKey=key.pem |
      "${conf[@]}" --key secret || fail "checkpoint key from a Secret's other key"
    grep -q -- '- key: key.pem' <<<"$(render "${secure[@]}" --set services.audit.checkpointKey.existingSecretKey=key.pem)" ||
      fail "checkpointKey.existingSecretKey not used"
    claim=(--set tls.existingSecret=ferry-tls --set tokenKey.existingSecret=ferry-auth
           --set services.audit.checkpointKey.existingClaim=ferry-audit-key)
    render "${claim[@]}" | "${conf[@]}" --key claim || fail "checkpoint key on a claim"
    refused "not both" "${secure[@]}" --set services.audit.checkpointKey.existingClaim=ferry-audit-key
    trial=(--set tls.existingSecret=ferry-tls --set tokenKey.existingSecret=ferry-auth
           --set services.audit.trialEphemeralKey=true)
    render "${trial[@]}" | "${conf[@]}" --key ephemeral || fail "trialEphemeralKey"
    grep -q 'WARNING: services.audit.trialEphemeralKey=true' <<<"$(notes "${trial[@]}")" ||
      fail "NOTES.txt does not warn about trialEphemeralKey"
    grep -q 'trialEphemeralKey' <<<"$(notes "${secure[@]}")" && fail "NOTES.txt warns about a key that is persistent"
    refused "services.audit.checkpointKey.existingSecret" --set devInsecure=true
    # Rotated-out keys from a Secret or a ConfigMap; the witness on a claim
    # the chart makes (kept on uninstall) or an existing one.
    render "${secure[@]}" --set services.audit.trustedKeys.existingSecret=old-keys | "${conf[@]}" --trusted ||
      fail "trusted keys from a Secret"
    render "${secure[@]}" --set services.audit.trustedKeys.existingConfigMap=old-keys | "${conf[@]}" --trusted ||
      fail "trusted keys from a ConfigMap"
    names=$(render_and_parse "${secure[@]}" --set services.audit.witness.enabled=true)
    grep -qx persistentvolumeclaim/ferry-audit-witness <<<"$names" || fail "no witness PVC rendered: $names"
    witnessed=$(render "${secure[@]}" --set services.audit.witness.enabled=true --set services.audit.witness.storageClassName=other-team-nfs)
    "${conf[@]}" --witness ferry-audit-witness <<<"$witnessed" || fail "witness on the chart's claim"
    grep -q 'storageClassName: other-team-nfs' <<<"$witnessed" || fail "witness storageClassName not used"
    grep -q 'helm.sh/resource-policy: keep' <<<"$witnessed" || fail "witness PVC not kept on uninstall"
    names=$(render_and_parse "${secure[@]}" --set services.audit.witness.enabled=true --set services.audit.witness.existingClaim=w)
    grep -q persistentvolumeclaim <<<"$names" && fail "a PVC rendered for an existing witness claim"
    render "${secure[@]}" --set services.audit.witness.enabled=true --set services.audit.witness.existingClaim=w |
      "${conf[@]}" --witness w || fail "witness on an existing claim"
    render -f "$chart/values-production.yaml" |
      "${conf[@]}" --trusted --witness ferry-audit-witness --repo-secrets ferry-repo-secrets || fail "production values"
    ;;
  helm_repo_secrets)
    conf=("${check[@]}" confinement)
    render "${secure[@]}" | "${conf[@]}" || fail "no secrets Secret: no --secrets-dir (file references refused)"
    render "${secure[@]}" --set services.repoWatcher.secrets.existingSecret=git-creds |
      "${conf[@]}" --repo-secrets git-creds || fail "--secrets-dir from a Secret"
    grep -q -- '--secret-env-prefix=CI_' <<<"$(render "${secure[@]}" --set services.repoWatcher.secrets.envPrefix=CI_)" ||
      fail "envPrefix not passed"
    refused "envPrefix" "${secure[@]}" --set 'services.repoWatcher.secrets.envPrefix=A B'
    # The planner's (Git host API tokens of preview comments, docs/previews.md).
    render "${secure[@]}" --set services.planner.secrets.existingSecret=git-host-tokens |
      "${conf[@]}" --planner-secrets git-host-tokens || fail "planner --secrets-dir from a Secret"
    if render "${secure[@]}" --set services.planner.secrets.existingSecret=git-host-tokens | "${conf[@]}" 2>/dev/null; then
      fail "the confinement check passed a planner --secrets-dir nobody asked for"
    fi
    grep -q -- '--secret-env-prefix=HOST_' <<<"$(render "${secure[@]}" --set services.planner.secrets.envPrefix=HOST_)" ||
      fail "planner envPrefix not passed"
    refused "envPrefix" "${secure[@]}" --set 'services.planner.secrets.envPrefix=A B'
    ;;
  helm_deployer_confinement)
    conf=("${check[@]}" confinement)
    render "${secure[@]}" | "${conf[@]}" || fail "default --allowed-roots, no --workload-user"
    render "${secure[@]}" --set services.deployer.workloadUser=ferry-workload:ferry-workload |
      "${conf[@]}" --workload-user ferry-workload:ferry-workload || fail "workloadUser"
    grep -q -- '--allowed-roots=/var/lib/ferry/a,/var/lib/ferry/b' <<<"$(render "${secure[@]}" \
      --set 'services.deployer.allowedRoots={/var/lib/ferry/a,/var/lib/ferry/b}')" || fail "allowedRoots list"
    refused "workloadUser" "${secure[@]}" --set services.deployer.workloadUser=root
    refused "workloadUser" "${secure[@]}" --set services.deployer.workloadUser=0:0
    refused "workloadUser" "${secure[@]}" --set services.deployer.workloadUser=app:root
    refused "allowedRoots" "${secure[@]}" --set 'services.deployer.allowedRoots={/}'
    refused "allowedRoots" "${secure[@]}" --set 'services.deployer.allowedRoots={var/lib}'
    refused "allowedRoots" "${secure[@]}" --set 'services.deployer.allowedRoots={/var/../etc}'
    refused "allowedRoots" "${secure[@]}" --set 'services.deployer.allowedRoots=null'
    # The checker itself: an allowed root on the read-only root filesystem.
    if render "${secure[@]}" --set 'services.deployer.allowedRoots={/srv/envs}' | "${conf[@]}" 2>/dev/null; then
      fail "an allowed root beneath no writable volume passed the check"
    fi
    ;;
  helm_terraform_and_declared_secrets)
    # Off by default: no Terraform flags, no state URL, no declared secrets.
    rendered=$(render "${secure[@]}")
    grep -q -- '--terraform-\|FERRY_TERRAFORM_STATE_URL\|--declared-secret' <<<"$rendered" &&
      fail "Terraform or declared-secret settings without being asked for"
    tf=(--set services.deployer.terraform.enabled=true --set services.deployer.terraform.stateUrl.existingSecret=tf-state
        --set services.notifier.declaredSecrets.existingSecret=declared
        --set services.notifier.declaredSecrets.envPrefix=FERRY_SECRET_DECLARED_)
    render "${secure[@]}" "${tf[@]}" | "${check[@]}" terraform || fail "Terraform target and declared secrets"
    # Without a state Secret: the target is on, environments bring their own backend.
    render "${secure[@]}" --set services.deployer.terraform.enabled=true | "${check[@]}" terraform --no-state-url ||
      fail "Terraform target without a state URL"
    refused "declaredSecrets.existingSecret must be a Secret of its own" "${secure[@]}" \
      --set services.notifier.secrets.existingSecret=same --set services.notifier.declaredSecrets.existingSecret=same
    refused "binary" "${secure[@]}" --set services.deployer.terraform.binary=tofu
    # The checker itself: a state URL on the command line fails it.
    if render "${secure[@]}" "${tf[@]}" --set 'services.deployer.extraArgs={--terraform-state-url=postgresql://x:y@db/tf}' |
         "${check[@]}" terraform 2>/dev/null; then
      fail "the check passed a state URL on the command line"
    fi
    ;;
  compose)
    file="$root/compose/docker-compose.yml"
    if command -v docker-compose >/dev/null; then
      docker-compose -f "$file" config -q || fail "compose file does not validate"
      docker-compose -f "$file" config | "${check[@]}" compose || fail "compose certs service and dependencies"
      # The checker itself: the declared subscriptions' secrets in the
      # operator's secrets volume, and a state URL `certs` does not make.
      if docker-compose -f "$file" config | sed 's|notifierdeclared|notifiersecrets|' | "${check[@]}" compose 2>/dev/null; then
        fail "the compose check passed declared subscriptions reading the notifier's own secrets"
      fi
      if docker-compose -f "$file" config | sed 's|--terraform-state-url-file=/etc/ferry/terraform/|--terraform-state-url-file=/etc/ferry/db/|' |
           "${check[@]}" compose 2>/dev/null; then
        fail "the compose check passed a Terraform state URL file nobody makes"
      fi
      docker-compose -f "$file" config | /usr/bin/python3 "$root/tests/packaging/db_roles_check.py" compose ||
        fail "compose database roles"
      # The checker itself: a service sharing the migrator's passfile fails it.
      if docker-compose -f "$file" config | sed 's|db-planner:/etc/ferry/db|db-migrator:/etc/ferry/db|' |
           /usr/bin/python3 "$root/tests/packaging/db_roles_check.py" compose 2>/dev/null; then
        fail "the compose roles check passed the planner mounting the migrator's passfile"
      fi
    else
      echo "docker-compose is not installed: checking the file as YAML only" >&2
      "${check[@]}" compose <"$file" || fail "compose certs service and dependencies"
    fi
    ;;
  compose_init)
    # The certs service's script, run here as compose runs it (with the
    # compose service names as extra SANs), twice.
    command -v openssl >/dev/null || fail "openssl is not installed"
    work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/secrets" && echo kept >"$work/secrets/github-token"
    export FERRY_DB_DIR="$work/db" FERRY_DB_PASSFILES="planner=$work/pass/planner migrator=$work/pass/migrator"
    export FERRY_DB_TERRAFORM_URL_DIR="$work/pass/terraform"
    PATH="$root/scripts:$PATH" FERRY_PRIVATE_DIRS="$work/secrets $work/witness" \
      "$root/compose/ferry-init" "$work/ca" "$work/out" audit planner deployer repo-watcher || fail "ferry-init"
    # Database passwords: 0600 in a 0700 folder, one passfile per role with its line only.
    [[ $(stat -c %a "$work/db") == 700 ]] || fail "FERRY_DB_DIR is not mode 0700"
    for r in admin migrator repo_watcher planner deployer audit; do
      grep -qE '^[0-9a-f]{64}$' "$work/db/$r.password" || fail "$r.password is not 32 bytes in hex"
      [[ $(stat -c %a "$work/db/$r.password") == 600 ]] || fail "$r.password is not mode 0600"
    done
    [[ "$(cat "$work/pass/planner/pgpass")" == "postgres:5432:ferry:ferry_planner:$(cat "$work/db/planner.password")" ]] ||
      fail "the planner's passfile is not its one line"
    [[ $(stat -c %a "$work/pass/planner/pgpass") == 600 ]] || fail "pgpass is not mode 0600"
    grep -q ferry_planner "$work/pass/migrator/pgpass" && fail "the migrator's passfile holds the planner's password"
    # The Terraform state URL: the state role's password, 0600, nothing else's.
    [[ "$(cat "$work/pass/terraform/state.url")" == \
       "postgresql://ferry_terraform:$(cat "$work/db/terraform.password")@postgres:5432/ferry_terraform?sslmode=disable" ]] ||
      fail "state.url is not ferry_terraform's URL: $(sed 's/:[0-9a-f]*@/:...@/' "$work/pass/terraform/state.url")"
    [[ $(stat -c %a "$work/pass/terraform/state.url") == 600 ]] || fail "state.url is not mode 0600"
    db_before=$(cat "$work/db/"*.password)
    [[ $(cat "$work/secrets/github-token") == kept ]] || fail "FERRY_PRIVATE_DIRS: contents not kept"
    out="$work/out"
    for f in tls/ca.pem token.key admin.token access-policy.yaml; do [[ -s "$out/$f" ]] || fail "no $f"; done
    for d in secrets witness; do
      [[ -d "$work/$d" && $(stat -c %a "$work/$d") == 700 ]] || fail "FERRY_PRIVATE_DIRS: $d is not a mode 0700 directory"
    done
    [[ -e "$out/tls/ca-key.pem" ]] && fail "the CA's key is in the services' volume"
    for svc in audit planner deployer repo-watcher; do
      openssl verify -CAfile "$out/tls/ca.pem" "$out/tls/$svc.pem" >/dev/null || fail "$svc.pem not signed by ca.pem"
      sans=$(openssl x509 -in "$out/tls/$svc.pem" -noout -ext subjectAltName)
      for want in "URI:spiffe://ferry/$svc" "DNS:ferry-$svc" "DNS:$svc" "DNS:audit" "DNS:localhost"; do
        grep -qF "$want" <<<"$sans" || fail "$svc.pem lacks SAN $want: $sans"
      done
      [[ $(stat -c %a "$out/tls/$svc-key.pem") == 600 ]] || fail "$svc-key.pem is not mode 0600"
    done
    grep -qE '^[0-9a-f]{64}$' "$out/token.key" || fail "token.key is not 32 bytes in hex"
    grep -qE '^ferry_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$' "$out/admin.token" || fail "admin.token is not ferry_<id>_<secret>"
    for f in token.key admin.token; do [[ $(stat -c %a "$out/$f") == 600 ]] || fail "$f is not mode 0600"; done
    grep -q 'user:admin' "$out/access-policy.yaml" || fail "access-policy.yaml does not bind user:admin"
    before=$(cd "$out" && sha256sum token.key admin.token access-policy.yaml tls/*)
    PATH="$root/scripts:$PATH" "$root/compose/ferry-init" "$work/ca" "$work/out" audit planner deployer repo-watcher \
      >/dev/null || fail "ferry-init, second run"
    [[ "$(cd "$out" && sha256sum token.key admin.token access-policy.yaml tls/*)" == "$before" ]] ||
      fail "a second run changed the files"
    [[ "$(cat "$work/db/"*.password)" == "$db_before" ]] || fail "a second run changed the database passwords"
    ;;
  helm_prometheus_rule)
    # Off by default (the CRD may be absent); when on, the rules are the
    # one rules file verbatim (compose's Prometheus loads the same file).
    grep -q 'kind: PrometheusRule' <<<"$(render "${secure[@]}")" && fail "a PrometheusRule rendered by default"
    work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
    render "${secure[@]}" --set prometheusRule.enabled=true --set prometheusRule.labels.release=kps \
        --show-only templates/prometheusrule.yaml >"$work/rule.yaml"
    /usr/bin/python3 - "$work/rule.yaml" "$chart/files/ferry-alerts.rules.yml" <<'PY' || fail "PrometheusRule"
import sys, yaml
rule = yaml.safe_load(open(sys.argv[1]))
rules = yaml.safe_load(open(sys.argv[2]))
assert rule["kind"] == "PrometheusRule", rule["kind"]
assert rule["metadata"]["labels"].get("release") == "kps", rule["metadata"]["labels"]
assert rule["spec"] == rules, "the PrometheusRule's spec is not files/ferry-alerts.rules.yml"
print("PrometheusRule: %d groups, as the rules file" % len(rules["groups"]))
PY
    refused "prometheusRule" "${secure[@]}" --set prometheusRule.colour=red
    ;;
  *) fail "unknown case $case_name" ;;
esac
echo "PASS: $case_name"
