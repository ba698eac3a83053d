{{/* The chart name. */}}
{{- define "partnerkit.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name: the release name when it contains the chart name, else <release>-<chart>. */}}
{{- define "partnerkit.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "partnerkit.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "partnerkit.selectorLabels" -}}
app.kubernetes.io/name: {{ include "partnerkit.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "partnerkit.labels" -}}
helm.sh/chart: {{ include "partnerkit.chart" . }}
{{ include "partnerkit.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: partnerkit
{{- end }}

{{- define "partnerkit.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "partnerkit.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "partnerkit.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The operator's config file: values.config plus `listen` derived from values.ports. */}}
{{- define "partnerkit.config" -}}
{{- if not .Values.config.catalog }}
{{- fail "config.catalog is required: the BizApps this platform offers (at least one)" }}
{{- end }}
{{- if hasKey .Values.config "listen" }}
{{- fail "do not set config.listen: the chart derives it from ports.metrics, ports.health and ports.web" }}
{{- end }}
{{- with (.Values.config.defaultBranding | default dict).support }}
{{- if and .email .url }}
{{- fail "config.defaultBranding.support: exactly one of email or url (set the other to null, e.g. --set config.defaultBranding.support.url=null)" }}
{{- end }}
{{- end }}
{{- with .Values.config.leaderElection }}
{{- if and (hasKey . "enabled") (not .enabled) (gt (int $.Values.replicaCount) 1) }}
{{- fail "config.leaderElection.enabled is false: set replicaCount to 1 (without leader election every replica reconciles)" }}
{{- end }}
{{- end }}
{{- with .Values.config.portal }}
{{- if eq (toString .auth) "demo" }}
{{- fail "config.portal.auth: demo lets anyone sign in as anyone and is only for a loopback address (make demo); the chart listens on 0.0.0.0: use proxy" }}
{{- end }}
{{- end }}
{{- $cfg := deepCopy .Values.config }}
{{- if and $cfg.portal (not $cfg.portal.sessionSecret) }}
{{- $_ := set $cfg.portal "sessionSecret" (include "partnerkit.portalSessionSecret" .) }}
{{- end }}
{{- $_ := set $cfg "listen" (dict "metrics" (printf "0.0.0.0:%d" (int .Values.ports.metrics)) "health" (printf "0.0.0.0:%d" (int .Values.ports.health)) "web" (printf "0.0.0.0:%d" (int .Values.ports.web))) }}
{{- toYaml $cfg }}
{{- end }}

{{/*
The Secret holding the portal's session key: config.portal.sessionSecret, else the one the
chart generates (<fullname>-portal-session), so that every replica accepts every session.
*/}}
{{- define "partnerkit.portalSessionSecret" -}}
{{- ((.Values.config).portal).sessionSecret | default (printf "%s-portal-session" (include "partnerkit.fullname" .)) -}}
{{- end }}
