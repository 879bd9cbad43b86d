"""The alert receiver: Alertmanager webhooks in, guarded remediation Jobs out (`remediation serve`).

Flow: server (HTTP, auth, size limit, schema) -> bounded queue -> core.Receiver per notification:
alert log record, dedupe, mapping to runbooks, guards per (runbook, target), Job launch, metrics, Events.
"""
