"""GuardStore kept in the cluster: one coordination.k8s.io Lease per (runbook, target) key.

The state is JSON in an annotation of the Lease; every write is a replace carrying the resourceVersion
that was read, so the API server rejects (409) a write based on a stale read, and we decide again on
fresh state. Two receiver replicas can therefore never both start a run for the same key.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .guards import GuardState

T = TypeVar("T")

STATE_ANNOTATION = "remediation.shorts.ops/guard-state"
KEY_ANNOTATION = "remediation.shorts.ops/guard-key"
MAX_ATTEMPTS = 20


class GuardStoreError(RuntimeError):
    """The guard state could not be read or written (API unreachable, forbidden, endless conflicts)."""


def lease_name(key: str) -> str:
    """A DNS-1123 name that reads like the key and cannot collide (hash of the full key)."""
    readable = re.sub(r"[^a-z0-9-]+", "-", key.lower()).strip("-")[:40].strip("-")
    return f"guard-{readable}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


class LeaseGuardStore:
    def __init__(self, api: client.ApiClient, namespace: str, identity: str | None = None) -> None:
        self._leases = client.CoordinationV1Api(api)
        self._namespace = namespace
        self._identity = identity or socket.gethostname()
        self.conflicts = 0  # how often optimistic concurrency made us re-decide (observability, tests)

    def update(self, key: str, fn: Callable[[GuardState], tuple[T, GuardState | None]]) -> T:
        name = lease_name(key)
        for attempt in range(MAX_ATTEMPTS):
            lease = self._read(name)
            state = self._state_of(lease)
            result, new = fn(state)
            if new is None:
                return result
            try:
                self._write(name, key, lease, new)
                return result
            except ApiException as exc:
                if exc.status != 409:
                    raise GuardStoreError(
                        f"writing Lease {self._namespace}/{name}: {exc.status} {exc.reason}"
                    ) from None
                self.conflicts += 1
                time.sleep(random.uniform(0, 0.005 * (attempt + 1)))  # de-synchronise contending replicas
        raise GuardStoreError(
            f"Lease {self._namespace}/{name}: still conflicting after {MAX_ATTEMPTS} attempts"
        )

    def get(self, key: str) -> GuardState:
        return self._state_of(self._read(lease_name(key)))

    def _read(self, name: str) -> client.V1Lease | None:
        try:
            return self._leases.read_namespaced_lease(name, self._namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise GuardStoreError(
                f"reading Lease {self._namespace}/{name}: {exc.status} {exc.reason}"
            ) from None

    @staticmethod
    def _state_of(lease: client.V1Lease | None) -> GuardState:
        meta = (lease.metadata if lease is not None else None) or client.V1ObjectMeta()
        annotations = meta.annotations or {}
        raw = annotations.get(STATE_ANNOTATION)
        return GuardState.from_json(json.loads(raw)) if raw else GuardState()

    def _write(self, name: str, key: str, lease: client.V1Lease | None, state: GuardState) -> None:
        now = datetime.now(UTC)
        previous = (lease.metadata if lease is not None else None) or client.V1ObjectMeta()
        body = client.V1Lease(
            metadata=client.V1ObjectMeta(
                resource_version=previous.resource_version,
                name=name,
                namespace=self._namespace,
                labels={"app.kubernetes.io/managed-by": "remediation-receiver"},
                annotations={
                    KEY_ANNOTATION: key,
                    STATE_ANNOTATION: json.dumps(state.to_json(), sort_keys=True),
                },
            ),
            spec=client.V1LeaseSpec(holder_identity=self._identity, renew_time=now),
        )
        if lease is None:
            # 409 AlreadyExists when another replica created it first: retried like a conflict.
            self._leases.create_namespaced_lease(self._namespace, body)
            return
        self._leases.replace_namespaced_lease(name, self._namespace, body)
