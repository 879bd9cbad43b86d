"""The remediation executor: YAML runbooks validated by JSON Schemas, run step by step.

Nothing here imports Pulumi: the executor and the Pulumi program meet only in runbooks/, schemas/ and
the Kubernetes objects.
"""
