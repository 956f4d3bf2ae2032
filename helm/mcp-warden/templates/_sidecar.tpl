{{/*
Sidecar mode (README "Sidecar mode"): the mcp-warden container and its two volumes, for a pod whose
MCP server listens on 127.0.0.1 only. sidecar-deployment.yaml includes both; your own chart may too,
with mcp-warden as a dependency, passing a context $ctx that holds this chart's Values, Chart and
Release, in two whole-line output actions (chomped, nindent to your pod template's depth):
  under containers:  include "mcp-warden.sidecar.container" $ctx | nindent 8
  under volumes:     include "mcp-warden.sidecar.volumes" $ctx | nindent 8
Args, probes, preStop, hardening and mount paths are those of the edge Deployment's container
(test/helm/chart.test.ts compares them); volume names carry an mcp-warden- prefix so that they
cannot collide with the workload's own.
*/}}

{{- define "mcp-warden.sidecar.container" -}}
- name: mcp-warden
  image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["serve", "--config", "/etc/mcp-warden/config.yaml"]
  {{- with .Values.env }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    - name: http
      containerPort: {{ .Values.config.listen.port }}
      protocol: TCP
    - name: admin
      containerPort: {{ .Values.config.admin.port }}
      protocol: TCP
  lifecycle:
    preStop:
      sleep:
        seconds: {{ .Values.preStopSleepSeconds }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: admin
    periodSeconds: 10
    timeoutSeconds: 3
    failureThreshold: 3
  readinessProbe:
    httpGet:
      path: /readyz
      port: admin
    periodSeconds: 5
    timeoutSeconds: 3
    failureThreshold: 2
  # Set on the container, not the pod: the workload beside it keeps its own user.
  securityContext:
    runAsNonRoot: true
    runAsUser: {{ .Values.podSecurityContext.runAsUser }}
    runAsGroup: {{ .Values.podSecurityContext.runAsGroup }}
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    capabilities:
      drop: [ALL]
    seccompProfile:
      type: RuntimeDefault
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  volumeMounts:
    - name: mcp-warden-config
      mountPath: /etc/mcp-warden
      readOnly: true
    - name: mcp-warden-signing-key
      mountPath: /var/run/secrets/mcp-warden
      readOnly: true
{{- end -}}

{{- define "mcp-warden.sidecar.volumes" -}}
- name: mcp-warden-config
  configMap:
    name: {{ include "mcp-warden.fullname" . }}
- name: mcp-warden-signing-key
  secret:
    secretName: {{ .Values.signingKey.existingSecret | default (include "mcp-warden.fullname" .) }}
    items:
      - key: {{ .Values.signingKey.secretKey }}
        path: gateway.jwk
    # 0400 written in decimal: YAML 1.1 (Helm) and 1.2 read a leading 0 differently.
    defaultMode: 256
{{- end -}}
