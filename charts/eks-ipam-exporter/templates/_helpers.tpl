{{/*
The chart name (app.kubernetes.io/name).
*/}}
{{- define "eks-ipam-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The full name of the cluster role's objects: the release name if it contains the chart name, else
<release>-<chart name>; at most 63 characters (DNS label).
*/}}
{{- define "eks-ipam-exporter.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The full name of the node agent's objects.
*/}}
{{- define "eks-ipam-exporter.nodeFullname" -}}
{{- printf "%s-node" (include "eks-ipam-exporter.fullname" . | trunc 58 | trimSuffix "-") -}}
{{- end -}}

{{/*
The namespace of every namespaced object.
*/}}
{{- define "eks-ipam-exporter.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride -}}
{{- end -}}

{{/*
helm.sh/chart: name-version.
*/}}
{{- define "eks-ipam-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Selector labels shared by both roles; the roles add app.kubernetes.io/component.
tools/gen_chart.py drops app.kubernetes.io/instance (and the other Helm-only labels) from the
kustomize base, so the base selects by name and component only, as the cluster role's agent
selector does (app.kubernetes.io/name=eks-ipam-exporter,app.kubernetes.io/component=node).
*/}}
{{- define "eks-ipam-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eks-ipam-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Standard labels without a component (namespace, rules, dashboards). Takes the root context.
*/}}
{{- define "eks-ipam-exporter.labels" -}}
{{- include "eks-ipam-exporter.labelsFor" (dict "ctx" . "component" "") -}}
{{- end -}}

{{/*
Standard labels: (dict "ctx" $ "component" "cluster"|"node"|"").
*/}}
{{- define "eks-ipam-exporter.labelsFor" -}}
{{- $ctx := .ctx -}}
helm.sh/chart: {{ include "eks-ipam-exporter.chart" $ctx }}
{{ include "eks-ipam-exporter.selectorLabels" $ctx }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
app.kubernetes.io/part-of: {{ include "eks-ipam-exporter.name" $ctx }}
{{- with $ctx.Chart.AppVersion }}
app.kubernetes.io/version: {{ . | trunc 63 | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
{{- with $ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "eks-ipam-exporter.cluster.labels" -}}
{{- include "eks-ipam-exporter.labelsFor" (dict "ctx" . "component" "cluster") -}}
{{- end -}}

{{- define "eks-ipam-exporter.node.labels" -}}
{{- include "eks-ipam-exporter.labelsFor" (dict "ctx" . "component" "node") -}}
{{- end -}}

{{- define "eks-ipam-exporter.cluster.selectorLabels" -}}
{{ include "eks-ipam-exporter.selectorLabels" . }}
app.kubernetes.io/component: cluster
{{- end -}}

{{- define "eks-ipam-exporter.node.selectorLabels" -}}
{{ include "eks-ipam-exporter.selectorLabels" . }}
app.kubernetes.io/component: node
{{- end -}}

{{/*
ServiceAccount names.
*/}}
{{- define "eks-ipam-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "eks-ipam-exporter.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "eks-ipam-exporter.node.serviceAccountName" -}}
{{- if .Values.nodeAgent.serviceAccount.create -}}
{{- default (include "eks-ipam-exporter.nodeFullname" .) .Values.nodeAgent.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.nodeAgent.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The image: [registry/]repository:tag[@digest]; the tag defaults to the chart's appVersion.
*/}}
{{- define "eks-ipam-exporter.image" -}}
{{- $repo := .Values.image.repository -}}
{{- with .Values.image.registry }}{{ $repo = printf "%s/%s" . $repo }}{{ end -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" $repo $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}
{{- end -}}

{{/*
imagePullSecrets entries: strings or {name: ...} objects.
*/}}
{{- define "eks-ipam-exporter.imagePullSecrets" -}}
{{- range .Values.imagePullSecrets }}
{{- if kindIs "string" . }}
- name: {{ . }}
{{- else }}
- {{ toYaml . | trim }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
The effective web configuration of a role, as YAML (read back with fromYaml):
  enabled, tls, secretName, chartSecret (the chart renders the Secret), tlsSecret, mountPath,
  configFile, checksum (of what the chart renders).
Argument: (dict "ctx" $ "role" "cluster"|"node").
*/}}
{{- define "eks-ipam-exporter.webConfig" -}}
{{- $ctx := .ctx -}}
{{- $w := $ctx.Values.webConfig -}}
{{- $what := "webConfig" -}}
{{- $secret := printf "%s-web-config" (include "eks-ipam-exporter.fullname" $ctx) -}}
{{- if and (eq .role "node") (not $ctx.Values.nodeAgent.webConfig.inherit) -}}
{{- $w = $ctx.Values.nodeAgent.webConfig -}}
{{- $what = "nodeAgent.webConfig" -}}
{{- $secret = printf "%s-web-config" (include "eks-ipam-exporter.nodeFullname" $ctx) -}}
{{- end -}}
{{- if $w.enabled -}}
{{- if and $w.existingSecret $w.config -}}
{{- fail (printf "%s: set either existingSecret or config, not both" $what) -}}
{{- end -}}
{{- if not (or $w.existingSecret $w.config) -}}
{{- fail (printf "%s.enabled: set %s.existingSecret (a Secret with web-config.yml) or %s.config" $what $what $what) -}}
{{- end -}}
{{- if and $w.config (ne (hasKey $w.config "tls_server_config") $w.tls) -}}
{{- fail (printf "%s.tls is %v but %s.config %s tls_server_config" $what $w.tls $what (ternary "has" "has no" (hasKey $w.config "tls_server_config"))) -}}
{{- end -}}
enabled: true
tls: {{ $w.tls }}
secretName: {{ default $secret $w.existingSecret }}
chartSecret: {{ not $w.existingSecret }}
tlsSecret: {{ $w.tlsSecret | quote }}
mountPath: {{ $w.mountPath }}
configFile: {{ printf "%s/web-config.yml" $w.mountPath }}
{{- if not $w.existingSecret }}
checksum: {{ printf "%s\n%s" (toYaml $w.config) (toYaml $w.files) | sha256sum | quote }}
{{- end }}
{{- else -}}
enabled: false
tls: false
{{- end -}}
{{- end -}}

{{/*
The cluster role's client configuration for the node agents, as YAML: enabled, secretName,
chartSecret, tlsSecret, mountPath, configFile, checksum. Fails when the agents serve
TLS or auth and the cluster role has no way to reach them.
*/}}
{{- define "eks-ipam-exporter.agentClientConfig" -}}
{{- $c := .Values.nodeAgent.clientConfig -}}
{{- $agentWeb := include "eks-ipam-exporter.webConfig" (dict "ctx" . "role" "node") | fromYaml -}}
{{- if and $c.existingSecret $c.config -}}
{{- fail "nodeAgent.clientConfig: set either existingSecret or config, not both" -}}
{{- end -}}
{{- if and .Values.nodeAgent.enabled $agentWeb.enabled (not (or $c.existingSecret $c.config)) -}}
{{- fail "the node agents serve a web configuration (webConfig / nodeAgent.webConfig): set nodeAgent.clientConfig.config or .existingSecret so that the cluster role can still pull them (--agent-client-config)" -}}
{{- end -}}
{{- if and $c.config $agentWeb.tls (ne (toString (default "http" $c.config.scheme)) "https") -}}
{{- fail "the node agents serve TLS: nodeAgent.clientConfig.config needs scheme: https" -}}
{{- end -}}
{{- if or $c.existingSecret $c.config -}}
enabled: true
secretName: {{ default (printf "%s-agent-client" (include "eks-ipam-exporter.fullname" .)) $c.existingSecret }}
chartSecret: {{ not $c.existingSecret }}
tlsSecret: {{ $c.tlsSecret | quote }}
mountPath: {{ $c.mountPath }}
configFile: {{ printf "%s/agent-client.yml" $c.mountPath }}
{{- if not $c.existingSecret }}
checksum: {{ printf "%s\n%s" (toYaml $c.config) (toYaml $c.files) | sha256sum | quote }}
{{- end }}
{{- else -}}
enabled: false
{{- end -}}
{{- end -}}

{{/*
A projected volume of a Secret (all keys) and, optionally, a kubernetes.io/tls Secret.
Argument: (dict "name" volume-name "cfg" effective-config).
*/}}
{{- define "eks-ipam-exporter.projectedVolume" -}}
- name: {{ .name }}
  projected:
    sources:
      - secret:
          name: {{ .cfg.secretName }}
      {{- with .cfg.tlsSecret }}
      - secret:
          name: {{ . }}
      {{- end }}
{{- end -}}

{{/*
The scheme of a role's HTTP server: (dict "web" effective-web-config).
*/}}
{{- define "eks-ipam-exporter.scheme" -}}
{{- ternary "https" "http" (and .web.enabled .web.tls) -}}
{{- end -}}
