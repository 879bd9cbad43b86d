"""Run records kept in the cluster: one ConfigMap `run-<run id>` per run, in the remediation namespace.

    labels       app.kubernetes.io/part-of=shorts-remediation, remediation.shorts.ops/record=run,
                 remediation.shorts.ops/runbook=<runbook>, remediation.shorts.ops/outcome=<outcome|running>
    annotations  remediation.shorts.ops/run-id=<run id>, remediation.shorts.ops/job=<Job name, in a Job>
    data         record.json: the record, already redacted (never a secret: the Recorder redacts first)

A save creates the ConfigMap the first time and replaces it afterwards, with the resourceVersion it last
saw; a conflict (someone else wrote in between) is read again and retried. The remediation Role allows
configmaps get, list, create and update: no delete, so old records stay until an operator prunes them.

Credentials are the Kubernetes actions' (their `client_factory`): the profile's kubeconfig/kube_context,
else in-cluster in a pod, else the default kubeconfig. The kubernetes client is imported on first use.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import urllib3

from remediation.actions._lazy import LazyModule
from remediation.errors import RemediationError
from remediation.records import Record, newest_first

if TYPE_CHECKING:
    from kubernetes import client as k8s
else:
    k8s = LazyModule("kubernetes.client")

PART_OF = "shorts-remediation"
PREFIX = "remediation.shorts.ops"
RECORD_LABEL = f"{PREFIX}/record"
RUNBOOK_LABEL = f"{PREFIX}/runbook"
OUTCOME_LABEL = f"{PREFIX}/outcome"
RUN_ID_ANNOTATION = f"{PREFIX}/run-id"
JOB_ANNOTATION = f"{PREFIX}/job"
DATA_KEY = "record.json"
UNFINISHED = "running"  # the outcome label of a record whose run has not finished (or was killed)
# A ConfigMap holds at most 1 MiB; past this the step outputs are left out (the file copy keeps them).
MAX_RECORD_BYTES = 900_000
REQUEST_TIMEOUT = (3, 15)  # seconds to connect, to read: a hung API server must not hang the run
CONFLICT_RETRIES = 3
TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, OSError)
_NOT_DNS = re.compile(r"[^a-z0-9.-]+")
_NOT_LABEL = re.compile(r"[^A-Za-z0-9_.-]+")


class RecordStoreError(RemediationError):
    """The cluster's record store could not be read or written (unreachable, forbidden, ...)."""


class ClusterConfigError(RecordStoreError):
    """No client could be configured: a kubeconfig or context that does not work (an input error)."""


def configmap_name(run_id: str) -> str:
    """`run-<run id>` as a DNS-1123 subdomain (lowercase; other characters and overlong ids get a hash)."""
    lowered = run_id.lower()
    cleaned = _NOT_DNS.sub("-", lowered).strip("-.")
    name = f"run-{cleaned}"
    if cleaned != lowered or len(name) > 253:
        digest = hashlib.sha256(run_id.encode()).hexdigest()[:10]
        name = f"{name[:241].rstrip('-.')}-{digest}"
    return name


def label_value(value: str) -> str:
    """A valid label value: at most 63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric."""
    return _NOT_LABEL.sub("-", value)[:63].strip("-_.")


def outcome_of(record: Mapping[str, Any]) -> str:
    return str(record.get("outcome") or UNFINISHED)


def fit(record: Mapping[str, Any]) -> str:
    """record.json, small enough for a ConfigMap: step outputs are dropped first when it is too big."""
    text = json.dumps(record, ensure_ascii=False, sort_keys=True, default=str)
    if len(text.encode()) <= MAX_RECORD_BYTES:
        return text
    slim = dict(record)
    for key in ("steps", "escalation"):
        slim[key] = [
            {**step, "output": {"omitted": "too large for the cluster record; see the Job's log"}}
            for step in record.get(key, [])
            if isinstance(step, Mapping)
        ]
    slim["truncated"] = True
    return json.dumps(slim, ensure_ascii=False, sort_keys=True, default=str)


def configmap_body(record: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    run_id = str(record["id"])
    annotations = {RUN_ID_ANNOTATION: run_id}
    if record.get("job"):
        annotations[JOB_ANNOTATION] = str(record["job"])
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": configmap_name(run_id),
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/part-of": PART_OF,
                RECORD_LABEL: "run",
                RUNBOOK_LABEL: label_value(str(record.get("runbook", ""))),
                OUTCOME_LABEL: label_value(outcome_of(record)),
            },
            "annotations": annotations,
        },
        "data": {DATA_KEY: fit(record)},
    }


def record_of(configmap: Mapping[str, Any]) -> Record | None:
    """The record in a ConfigMap (as JSON from the API server); None when it holds none."""
    try:
        value = json.loads((configmap.get("data") or {}).get(DATA_KEY, ""))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def request(
    api: k8s.ApiClient,
    method: str,
    path: str,
    query: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One REST call with the client's credentials; the answer as plain JSON, non-2xx as an ApiException.

    Plain JSON, not the typed CoreV1Api/BatchV1Api: importing those generated modules (every model of the
    group) took 2-6 s, more than the whole `remediation runs` otherwise does.
    """
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    serialized = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=list((query or {}).items()),
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*serialized, _request_timeout=REQUEST_TIMEOUT)
    response.read()
    text = response.data.decode("utf-8") if response.data else ""
    if not 200 <= response.status <= 299:
        raise k8s.ApiException.from_response(http_resp=response, body=text, data=None)
    return cast(dict[str, Any], json.loads(text)) if text else {}


class ConfigMapRecordStore:
    """RecordStore on ConfigMaps; `connection`: kubeconfig/kube_context (empty: in-cluster or default)."""

    def __init__(
        self,
        namespace: str,
        connection: Mapping[str, Any] | None = None,
        hint: str = "set kubeconfig (and kube_context) in the profile",
    ) -> None:
        self.namespace = namespace
        self.connection = dict(connection or {})
        self.hint = hint  # what to change when no client can be configured (the CLI says: its flags)
        self._api: k8s.ApiClient | None = None
        self._versions: dict[str, str] = {}  # ConfigMap name -> the resourceVersion this store last wrote

    # --- the client ------------------------------------------------------------------------------

    def api(self) -> k8s.ApiClient:
        """The client, built once from the connection."""
        if self._api is None:
            from remediation.actions import kubernetes as kube_actions  # the actions' credentials

            try:
                self._api = kube_actions.client_factory(self.connection)
            except RemediationError as err:
                # the actions' message ends in their own hint (the profile's keys); ours fits the caller
                detail = str(err).rsplit("; ", 1)[0]
                raise ClusterConfigError(f"{detail} (records: {self.where()}); {self.hint}") from None
        return self._api

    def where(self) -> str:
        config = self.connection
        kubeconfig = config.get("kubeconfig") or "the default kubeconfig"
        context = f", context {config['kube_context']}" if config.get("kube_context") else ""
        return f"namespace {self.namespace} ({kubeconfig}{context})"

    def error_for(self, what: str, exc: Exception) -> RecordStoreError:
        if isinstance(exc, k8s.ApiException):
            from remediation.actions.kubernetes import api_error_detail

            status, detail = api_error_detail(exc)
            if status in (401, 403):
                return RecordStoreError(
                    f"{what} in {self.where()}: forbidden ({detail}); these credentials may not "
                    "read or write ConfigMaps there"
                )
            return RecordStoreError(f"{what} in {self.where()}: the API server answered {status} ({detail})")
        return RecordStoreError(
            f"{what}: cannot reach the Kubernetes API for {self.where()} ({exc}); check that the cluster "
            "is up, or pass --kubeconfig/--context"
        )

    # --- RecordStore -----------------------------------------------------------------------------

    def save(self, record: Mapping[str, Any]) -> str:
        body = configmap_body(record, self.namespace)
        name = body["metadata"]["name"]
        api = self.api()
        try:
            self._write(api, name, body)
        except (k8s.ApiException, *TRANSPORT_ERRORS) as exc:
            raise self.error_for(f"saving run record {name}", exc) from None
        return f"configmap {self.namespace}/{name}"

    def _path(self, name: str | None = None) -> str:
        path = f"/api/v1/namespaces/{self.namespace}/configmaps"
        return f"{path}/{name}" if name else path

    def _write(self, api: k8s.ApiClient, name: str, body: dict[str, Any]) -> None:
        for _ in range(CONFLICT_RETRIES):
            version = self._versions.get(name)
            try:
                if version is None:
                    written = request(api, "POST", self._path(), body=body)
                else:
                    body["metadata"]["resourceVersion"] = version
                    written = request(api, "PUT", self._path(name), body=body)
            except k8s.ApiException as exc:
                if exc.status == 404 and version is not None:  # deleted meanwhile: create it again
                    self._versions.pop(name)
                    continue
                if exc.status != 409:
                    raise
                # created before (a retried save) or changed since we last wrote: take its version, retry
                current = request(api, "GET", self._path(name))
                self._versions[name] = str(current["metadata"]["resourceVersion"])
                continue
            self._versions[name] = str(written["metadata"]["resourceVersion"])
            return
        raise RecordStoreError(
            f"saving run record {name}: it kept changing under us ({CONFLICT_RETRIES} tries)"
        )

    def get(self, run_id: str) -> Record | None:
        name = configmap_name(run_id)
        try:
            configmap = request(self.api(), "GET", self._path(name))
        except (k8s.ApiException, *TRANSPORT_ERRORS) as exc:
            if isinstance(exc, k8s.ApiException) and exc.status == 404:
                return None
            raise self.error_for(f"reading run record {name}", exc) from None
        record = record_of(configmap)
        # two ids that differ only in case share a name: the record says whose it is
        return record if record is not None and record.get("id") == run_id else None

    def latest(self, runbook: str) -> Record | None:
        found = self.recent(1, runbook)
        return found[0] if found else None

    def recent(self, limit: int, runbook: str | None = None) -> list[Record]:
        selector = f"{RECORD_LABEL}=run"
        if runbook is not None:
            selector += f",{RUNBOOK_LABEL}={label_value(runbook)}"
        try:
            listed = request(self.api(), "GET", self._path(), query={"labelSelector": selector})
        except (k8s.ApiException, *TRANSPORT_ERRORS) as exc:
            raise self.error_for("listing run records", exc) from None
        records = [r for r in (record_of(item) for item in listed.get("items", [])) if r is not None]
        if runbook is not None:
            records = [r for r in records if r.get("runbook") == runbook]
        return newest_first(records)[:limit]
