{{- /* Names ------------------------------------------------------------------ */}}

{{- define "orchestrator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-orchestrator" .Release.Name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "orchestrator.api.fullname" -}}
{{ include "orchestrator.fullname" . }}-api
{{- end }}

{{- define "orchestrator.scheduler.fullname" -}}
{{ include "orchestrator.fullname" . }}-scheduler
{{- end }}

{{- define "orchestrator.migrate.fullname" -}}
{{ include "orchestrator.fullname" . }}-migrate
{{- end }}

{{- define "orchestrator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- .Values.serviceAccount.name | default (include "orchestrator.fullname" .) }}
{{- else }}
{{- .Values.serviceAccount.name | default "default" }}
{{- end }}
{{- end }}

{{- define "orchestrator.secretName" -}}
{{- .Values.database.existingSecret | default (printf "%s-secrets" (include "orchestrator.fullname" .)) }}
{{- end }}

{{- define "orchestrator.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- /* A worker pool's image: its own (a framework's worker image, images/Containerfile) or the chart's. */}}
{{- define "orchestrator.workerImage" -}}
{{- with .pool.image }}
{{- printf "%s:%s" .repository (.tag | default $.root.Chart.AppVersion) }}
{{- else }}
{{- include "orchestrator.image" .root }}
{{- end }}
{{- end }}

{{- /* The hub, as the JupyterHub chart names it (its helpers serve parent charts). */}}
{{- define "orchestrator.hub.baseUrl" -}}
{{- $base := dig "hub" "baseUrl" "/" .Values.jupyterhub | default "/" }}
{{- printf "%s/" (trimSuffix "/" $base) }}
{{- end }}

{{- define "orchestrator.hub.apiUrl" -}}
{{- printf "http://%s:8081%shub/api" (include "jupyterhub.hub.fullname" .) (include "orchestrator.hub.baseUrl" .) }}
{{- end }}

{{- /* /services/orchestrator/: where the proxy routes the service, the API's base_url. */}}
{{- define "orchestrator.api.prefix" -}}
{{- printf "%sservices/%s/" (include "orchestrator.hub.baseUrl" .) .Values.api.hubServiceName }}
{{- end }}

{{- /* Labels ----------------------------------------------------------------- */}}

{{- define "orchestrator.selectorLabels" -}}
app.kubernetes.io/name: orchestrator
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{- define "orchestrator.labels" -}}
{{ include "orchestrator.selectorLabels" . }}
app.kubernetes.io/part-of: orchestrator
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- /* The label that admits a pod to PostgreSQL (see networkpolicy.yaml). */}}
{{- define "orchestrator.databaseClientLabel" -}}
orchestrator/database-client: "true"
{{- end }}

{{- /* z2jh pods, selected the way the JupyterHub chart selects them. */}}
{{- define "orchestrator.hubPodLabels" -}}
app: {{ dig "nameOverride" "" .Values.jupyterhub | default "jupyterhub" | quote }}
release: {{ .Release.Name | quote }}
component: {{ .component }}
{{- end }}

{{- /* Pods ------------------------------------------------------------------- */}}

{{- /* `--OrchestratorApp.<name>=<value>` for each of orchestratorConfig. */}}
{{- define "orchestrator.configArgs" -}}
{{- range $name, $value := .Values.orchestratorConfig }}
- {{ printf "--OrchestratorApp.%s=%v" $name $value | quote }}
{{- end }}
{{- end }}

{{- /* The server's database URL and key ring: from the Secret, never as values. */}}
{{- define "orchestrator.databaseEnv" -}}
- name: ORCHESTRATOR_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "orchestrator.secretName" . }}
      key: {{ .Values.database.secretKeys.url }}
- name: ORCHESTRATOR_ENCRYPTION_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ include "orchestrator.secretName" . }}
      key: {{ .Values.database.secretKeys.encryptionKeys }}
{{- end }}

{{- /* Writable places on a read-only root filesystem. */}}
{{- define "orchestrator.commonEnv" -}}
- name: HOME
  value: /home/orchestrator
- name: ORCHESTRATOR_DATA_DIR
  value: /home/orchestrator/data
- name: PYTHONUNBUFFERED
  value: "1"
{{- end }}

{{- define "orchestrator.commonVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: home
  mountPath: /home/orchestrator
{{- end }}

{{- define "orchestrator.commonVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
- name: home
  emptyDir:
    sizeLimit: 1Gi
{{- end }}

{{- define "orchestrator.podSpecCommon" -}}
automountServiceAccountToken: false
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{- /* nodeSelector, tolerations and affinity of one component's values. */}}
{{- define "orchestrator.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- /* A PodDisruptionBudget: .root, .name, .component, .pdb (values), .extra (labels). */}}
{{- define "orchestrator.pdb" -}}
{{- if .pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ .name }}
  labels:
    {{- include "orchestrator.labels" .root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- if hasKey .pdb "minAvailable" }}
  minAvailable: {{ .pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ .pdb.maxUnavailable | default 1 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "orchestrator.selectorLabels" .root | nindent 6 }}
      app.kubernetes.io/component: {{ .component }}
      {{- with .extra }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
{{- end }}
{{- end }}

{{- /* NetworkPolicy rules ---------------------------------------------------- */}}

{{- define "orchestrator.egress.dns" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end }}

{{- define "orchestrator.egress.database" -}}
{{- $db := .Values.database.networkPolicy }}
- ports:
    - port: {{ $db.port }}
      protocol: TCP
  to:
    {{- range $db.ipBlocks }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
    {{- with $db.podSelector }}
    - podSelector:
        matchLabels:
          {{- toYaml . | nindent 10 }}
    {{- end }}
{{- end }}

{{- define "orchestrator.egress.hub" -}}
- ports:
    - port: 8081
      protocol: TCP
  to:
    - podSelector:
        matchLabels:
          {{- include "orchestrator.hubPodLabels" (merge (dict "component" "hub") .) | nindent 10 }}
{{- end }}
