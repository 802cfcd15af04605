{{/* Chart name, truncated to the DNS label limit. */}}
{{- define "ferry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped base name. */}}
{{- define "ferry.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "ferry.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "ferry.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The four services: values key -> component name. */}}
{{- define "ferry.components" -}}
repoWatcher: repo-watcher
planner: planner
deployer: deployer
audit: audit
notifier: notifier
{{- end -}}

{{- define "ferry.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "ferry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "ferry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ferry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ferry.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Name of the Secret and key holding the database URL. */}}
{{- define "ferry.databaseSecret" -}}
{{- if .Values.database.existingSecret -}}
{{ .Values.database.existingSecret }}
{{- else if .Values.postgresql.enabled -}}
{{ include "ferry.fullname" . }}-postgresql
{{- else -}}
{{- fail "set database.existingSecret (a Secret with one postgresql:// URL per role and database.perServiceRoles.enabled=true, after running helm/ferry/files/db-roles.sql on the database; or one URL for all under database.existingSecretKey) or postgresql.enabled=true" -}}
{{- end -}}
{{- end -}}

{{- define "ferry.databaseSecretKey" -}}
{{- if .Values.database.existingSecret -}}
{{ .Values.database.existingSecretKey }}
{{- else -}}
url
{{- end -}}
{{- end -}}

{{/* "true" when each service logs in as its own database role and an init
container migrates as the owner (docs/operations.md, "Database roles"): always
with the bundled PostgreSQL, with an external one when
database.perServiceRoles.enabled. */}}
{{- define "ferry.databaseRoles" -}}
{{- if .Values.database.existingSecret -}}
{{- .Values.database.perServiceRoles.enabled -}}
{{- else -}}
true
{{- end -}}
{{- end -}}

{{/* The Secret key of a URL: (dict "root" $ "key" "planner"|"repoWatcher"|...|"migrator"). */}}
{{- define "ferry.databaseUrlKey" -}}
{{- if eq (include "ferry.databaseRoles" .root) "true" -}}
{{- if .root.Values.database.existingSecret -}}
{{- index .root.Values.database.perServiceRoles (printf "%sKey" .key) -}}
{{- else -}}
{{- printf "%s-url" (.key | kebabcase) -}}
{{- end -}}
{{- else -}}
{{ include "ferry.databaseSecretKey" .root }}
{{- end -}}
{{- end -}}

{{/* The ServiceAccount of one component: ferry.serviceAccountName (dict "root" $ "component" "planner"). */}}
{{- define "ferry.serviceAccountName" -}}
{{- if .root.Values.serviceAccount.create -}}
{{ include "ferry.fullname" .root }}-{{ .component }}
{{- else -}}
{{ .root.Values.serviceAccount.name | default "default" }}
{{- end -}}
{{- end -}}

{{/* Whether a component's pods get a Kubernetes API token: only the deployer,
and only when the chart gives it RBAC (the coming Kubernetes target). */}}
{{- define "ferry.automountToken" -}}
{{- and (eq .component "deployer") .root.Values.rbac.create -}}
{{- end -}}

{{/* Where a component's certificate comes from, as "per-service",
"cert-manager", "shared" or "" (none): a service's own Secret wins, then
cert-manager, then the one shared Secret. Call with (dict "root" $ "key" "planner"). */}}
{{- define "ferry.tlsSource" -}}
{{- $svc := index .root.Values.services .key -}}
{{- if and $svc.tls $svc.tls.existingSecret -}}
per-service
{{- else if .root.Values.tls.certManager.enabled -}}
cert-manager
{{- else if .root.Values.tls.existingSecret -}}
shared
{{- end -}}
{{- end -}}

{{/* The Secret holding a component's certificate (dict "root" $ "key" "planner" "component" "planner"). */}}
{{- define "ferry.tlsSecret" -}}
{{- $source := include "ferry.tlsSource" . -}}
{{- if eq $source "per-service" -}}
{{ (index .root.Values.services .key).tls.existingSecret }}
{{- else if eq $source "cert-manager" -}}
{{ include "ferry.fullname" .root }}-{{ .component }}-tls
{{- else if eq $source "shared" -}}
{{ .root.Values.tls.existingSecret }}
{{- else -}}
{{- fail (printf "no certificate for %s: set tls.existingSecret (one Secret with ca.pem, <service>.pem and <service>-key.pem, as scripts/ferry-certs makes them), services.%s.tls.existingSecret (a kubernetes.io/tls Secret with ca.crt), or tls.certManager.enabled=true with tls.certManager.issuerRef; devInsecure=true runs without TLS or authentication (development only)" .component .key) -}}
{{- end -}}
{{- end -}}

{{/* The Secret key of a component's CA, certificate and private key, by source. */}}
{{- define "ferry.tlsCaKey" -}}
{{- if eq (include "ferry.tlsSource" .) "shared" -}}ca.pem{{- else -}}ca.crt{{- end -}}
{{- end -}}
{{- define "ferry.tlsCertKey" -}}
{{- if eq (include "ferry.tlsSource" .) "shared" -}}{{ .component }}.pem{{- else -}}tls.crt{{- end -}}
{{- end -}}
{{- define "ferry.tlsKeyKey" -}}
{{- if eq (include "ferry.tlsSource" .) "shared" -}}{{ .component }}-key.pem{{- else -}}tls.key{{- end -}}
{{- end -}}

{{/* The ConfigMap holding the access policy, and its key. */}}
{{- define "ferry.accessPolicyConfigMap" -}}
{{- if .Values.accessPolicy.existingConfigMap -}}
{{ .Values.accessPolicy.existingConfigMap }}
{{- else -}}
{{ include "ferry.fullname" . }}-access-policy
{{- end -}}
{{- end -}}

{{- define "ferry.accessPolicyKey" -}}
{{- if .Values.accessPolicy.existingConfigMap -}}
{{ .Values.accessPolicy.existingConfigMapKey }}
{{- else -}}
access-policy.yaml
{{- end -}}
{{- end -}}

{{/* The Secret with the API tokens' hash key; required unless devInsecure. */}}
{{- define "ferry.tokenKeySecret" -}}
{{- .Values.tokenKey.existingSecret | required "set tokenKey.existingSecret: a Secret whose key token.key (tokenKey.existingSecretKey) holds the API tokens' hash key, 32 random bytes in hex (openssl rand -hex 32), the same for every service; or devInsecure=true (development only)" -}}
{{- end -}}

{{/* The DNS names of a component's certificate: ferry-<component>, its
Service's names in the cluster, localhost (for port-forwards), and any extra. */}}
{{- define "ferry.certificateDnsNames" -}}
{{- $svcName := printf "%s-%s" (include "ferry.fullname" .root) .component -}}
{{- $ns := .root.Release.Namespace -}}
{{- $names := list (printf "ferry-%s" .component) $svcName (printf "%s.%s" $svcName $ns) (printf "%s.%s.svc" $svcName $ns) (printf "%s.%s.svc.%s" $svcName $ns .root.Values.clusterDomain) "localhost" -}}
{{- range .root.Values.tls.certManager.extraDnsNames }}{{ $names = append $names . }}{{ end -}}
{{- toYaml (uniq $names) -}}
{{- end -}}

{{/* Where the audit checkpoint key comes from: "secret", "claim" or
"ephemeral" (trialEphemeralKey); refuses to render without one. */}}
{{- define "ferry.auditKeySource" -}}
{{- $a := .Values.services.audit -}}
{{- if and $a.checkpointKey.existingSecret $a.checkpointKey.existingClaim -}}
{{- fail "set one of services.audit.checkpointKey.existingSecret and services.audit.checkpointKey.existingClaim, not both" -}}
{{- else if $a.checkpointKey.existingSecret -}}
secret
{{- else if $a.checkpointKey.existingClaim -}}
claim
{{- else if $a.trialEphemeralKey -}}
ephemeral
{{- else -}}
{{- fail "the audit checkpoint key must be persistent: set services.audit.checkpointKey.existingSecret (a Secret with the PEM Ed25519 key under checkpoint.pem: openssl genpkey -algorithm ed25519 -out checkpoint.pem) or services.audit.checkpointKey.existingClaim (a PersistentVolumeClaim where the service generates and keeps it); or services.audit.trialEphemeralKey=true for a trial whose checkpoints cannot be verified after a restart" -}}
{{- end -}}
{{- end -}}
