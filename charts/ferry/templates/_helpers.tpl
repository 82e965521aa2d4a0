{{/* The chart name, overridable. */}}
{{- define "ferry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, used for every namespaced object and the operator's cluster roles. */}}
{{- define "ferry.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ferry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ferry.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ferry.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "ferry.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ferry
{{- end }}

{{- define "ferry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ferry.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The user name the API server gives the operator's ServiceAccount. */}}
{{- define "ferry.serviceAccountUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "ferry.serviceAccountName" . }}
{{- end }}

{{- define "ferry.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Leader election is on when asked for or when more than one replica runs. */}}
{{- define "ferry.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicas) 1) }}true{{- end }}
{{- end }}

{{/*
"true" when the creator policies are installed: admission policies on, and
admissionPolicy.recordCreator true, or "auto" on a cluster that serves
admissionregistration.k8s.io/v1 MutatingAdmissionPolicy (Kubernetes 1.36+).
*/}}
{{- define "ferry.recordCreator" -}}
{{- $mode := toString .Values.admissionPolicy.recordCreator }}
{{- if and .Values.admissionPolicy.enabled (or (eq $mode "true") (and (eq $mode "auto") (.Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy"))) }}true{{- end }}
{{- end }}

{{- define "ferry.pvcName" -}}
{{- default (printf "%s-artifacts" (include "ferry.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/* The workspace object kinds, the things that migrate. */}}
{{- define "ferry.workspaceObjects" -}}
- scheduledtasks
- tables
- fileresources
- functions
- qualityrules
- serviceapis
{{- end }}

{{/* Rules of a workspace administrator: shared by ferry-workspace-admin and ferry-tenant-owner. */}}
{{- define "ferry.adminRules" -}}
# Create, change and delete import and export work.
- apiGroups: [ferry.dev]
  resources: [importtasks, migrationpackages]
  verbs: [get, list, watch, create, update, patch, delete, deletecollection]
# Read the progress and summary report in status.
- apiGroups: [ferry.dev]
  resources: [importtasks/status, migrationpackages/status]
  verbs: [get]
# Everything a workspace administrator does to the workspace's objects.
- apiGroups: [ferry.dev]
  resources:
{{ include "ferry.workspaceObjects" . | indent 2 }}
  verbs: [get, list, watch, create, update, patch, delete, deletecollection]
# Read the full per-object import reports (ConfigMaps owned by the tasks);
# create, read and delete the chunk ConfigMaps that carry a package through
# the API server (kubectl migrate upload and download).
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, delete]
{{- end }}
