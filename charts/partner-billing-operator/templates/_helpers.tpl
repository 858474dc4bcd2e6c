{{- define "pbo.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pbo.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "pbo.labels" -}}
app.kubernetes.io/name: {{ include "pbo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "pbo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pbo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pbo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pbo.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The partnerbilling.io resources, with their status subresources. */}}
{{- define "pbo.resources" -}}
- payers
- linkedaccounts
- organizationalunits
- servicecontrolpolicies
- pricingplans
- billinggroups
- customlineitems
- curpipelines
- billingtransfers
{{- end -}}
{{- define "pbo.statusResources" -}}
- payers/status
- linkedaccounts/status
- organizationalunits/status
- servicecontrolpolicies/status
- pricingplans/status
- billinggroups/status
- customlineitems/status
- curpipelines/status
- billingtransfers/status
{{- end -}}
