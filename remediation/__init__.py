"""The remediation executor: YAML runbooks validated by JSON Schemas, run step by step (no Pulumi import here)."""
