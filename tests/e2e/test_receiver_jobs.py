"""The alert receiver against the local control plane: real Jobs, guard state in Leases, Events,
and the receiver's own least-privilege Role (it runs with a ServiceAccount token, not as admin)."""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from remediation.receiver.alertlog import AlertLog
from remediation.receiver.core import Receiver, ReceiverConfig
from remediation.receiver.events import KubernetesEvents
from remediation.receiver.guards import GuardPolicy, GuardState, decide
from remediation.receiver.guards_cluster import STATE_ANNOTATION, LeaseGuardStore
from remediation.receiver.jobs import JobTemplate
from remediation.receiver.jobs_cluster import KubernetesJobLauncher
from remediation.receiver.server import ReceiverServer, TokenSource
from tests.e2e.conftest import Cluster, bound_service_account_token, eventually

pytestmark = pytest.mark.e2e

TOKEN = "e2e-receiver-token"
RUNBOOKS = {
    "api-restart.yaml": """
apiVersion: shorts.ops/v1
kind: Runbook
metadata: {name: api-restart, title: Restart the API, severity: P1}
triggers: [{alert: APIHealthCheckFailed}]
params: {namespace: {type: string, default: shorts}, deployment: {type: string, default: api}}
guards: {cooldown: 10m, budget: {runs: 3, per: 1h}}
steps: [{id: restart, action: kubernetes.restart, with: {kind: Rollout, name: api, namespace: shorts}}]
""",
    "flaky-fix.yaml": """
apiVersion: shorts.ops/v1
kind: Runbook
metadata: {name: flaky-fix, title: A fix that keeps failing, severity: P2}
triggers: [{alert: FlakyThing}]
params: {deployment: {type: string, default: api}}
guards: {cooldown: 1s, budget: {runs: 10, per: 1h}}
steps: [{id: fix, action: kubernetes.restart, with: {kind: Rollout, name: api, namespace: shorts}}]
""",
    "once-an-hour.yaml": """
apiVersion: shorts.ops/v1
kind: Runbook
metadata: {name: once-an-hour, title: A fix with a budget of one run, severity: P2}
triggers: [{alert: RareThing}]
guards: {cooldown: 1s, budget: {runs: 1, per: 1h}}
steps: [{id: fix, action: kubernetes.restart, with: {kind: Rollout, name: api, namespace: shorts}}]
""",
}

# What the receiver needs and nothing more (the Pulumi program declares the same Role).
RECEIVER_RULES = [
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "list"]},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
]


def receiver_token(k8s: client.ApiClient, namespace: str) -> str:
    """The receiver's own token; the `remediation` ServiceAccount its Jobs run as exists, without rights."""
    client.CoreV1Api(k8s).create_namespaced_service_account(namespace, {"metadata": {"name": "remediation"}})
    return bound_service_account_token(k8s, namespace, "remediation-receiver", RECEIVER_RULES)


@dataclass
class Replica:
    server: ReceiverServer
    store: LeaseGuardStore
    log_path: Path
    api: client.ApiClient  # the receiver's own credentials (its ServiceAccount token)
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            base_url=self.server.url, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}
        )

    def send(self, payload: dict[str, Any]) -> int:
        return self.http.post("/alerts", content=json.dumps(payload).encode()).status_code

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]


def start_replicas(
    cluster: Cluster, k8s: client.ApiClient, namespace: str, tmp_path: Path, template: JobTemplate
) -> list[Replica]:
    """Two receivers, as two replicas of the Deployment, sharing guard state in the namespace's Leases."""
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    for name, text in RUNBOOKS.items():
        (runbooks / name).write_text(text)
    (tmp_path / "token").write_text(TOKEN)
    api = cluster.token_client(receiver_token(k8s, namespace))
    started: list[Replica] = []
    for i in range(2):
        store = LeaseGuardStore(api, namespace, identity=f"receiver-{i}")
        receiver = Receiver(
            ReceiverConfig(runbooks, namespace, GuardPolicy(breaker_failures=2)),
            store,
            KubernetesJobLauncher(api, template),
            events=KubernetesEvents(api),
            alert_log=AlertLog(tmp_path / f"alerts-{i}.jsonl"),
        )
        server = ReceiverServer(
            receiver, TokenSource(tmp_path / "token"), workers=4, queue_size=2000, reconcile_every_s=3600
        )
        server.start()
        started.append(Replica(server, store, tmp_path / f"alerts-{i}.jsonl", api))
    return started


def stop_replicas(started: list[Replica]) -> None:
    for replica in started:
        replica.http.close()
        replica.server.stop()


@pytest.fixture
def replicas(
    cluster: Cluster, k8s: client.ApiClient, namespace: str, tmp_path: Path
) -> Iterator[list[Replica]]:
    started = start_replicas(cluster, k8s, namespace, tmp_path, JobTemplate(namespace=namespace))
    yield started
    stop_replicas(started)


@pytest.fixture
def failing_replicas(
    cluster: Cluster, k8s: client.ApiClient, namespace: str, tmp_path: Path
) -> Iterator[list[Replica]]:
    """Receivers whose every Job fails for real: a quota of zero pods keeps the Job from ever running, and
    the Job controller fails it at its 2-second deadline (DeadlineExceeded), as a run that hangs would be."""
    client.CoreV1Api(k8s).create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}}
    )
    template = JobTemplate(namespace=namespace, active_deadline_s=2)
    started = start_replicas(cluster, k8s, namespace, tmp_path, template)
    yield started
    stop_replicas(started)


def alert(
    name: str = "APIHealthCheckFailed",
    *,
    fingerprint: str = "aaaa0001",
    starts_at: str = "2026-11-26T06:00:00Z",
    status: str = "firing",
    **labels: str,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, "severity": "critical", **labels},
        "annotations": {"summary": f"{name} firing"},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-26T06:10:00Z",
        "generatorURL": "",
        "fingerprint": fingerprint,
    }


def payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "status": alerts[0]["status"],
        "receiver": "remediation",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://am",
        "alerts": list(alerts),
    }


def jobs(k8s: client.ApiClient, namespace: str) -> list[client.V1Job]:
    return list(client.BatchV1Api(k8s).list_namespaced_job(namespace).items)


def drain(*replicas: Replica) -> None:
    for replica in replicas:
        assert replica.server.drain(timeout_s=120)


def test_a_firing_alert_creates_exactly_one_job(
    replicas: list[Replica], k8s: client.ApiClient, namespace: str
) -> None:
    first = replicas[0]
    notification = payload(alert(namespace=namespace, deployment="api"))
    assert first.send(notification) == 200
    drain(first)
    created = jobs(k8s, namespace)
    assert len(created) == 1
    job = created[0]
    pod = job.spec.template.spec
    assert pod.service_account_name == "remediation" and job.spec.backoff_limit == 0
    assert job.spec.active_deadline_seconds == 1800
    assert pod.containers[0].command == [
        "remediation", "run", "api-restart", "--runbooks-dir", "/runbooks",
        "--profile", "/etc/remediation/profile.yaml", "--yes", "--output", "json",
        "--param", "deployment=api", "--param", f"namespace={namespace}",
    ]  # fmt: skip
    assert job.metadata.labels["remediation.shorts.ops/runbook"] == "api-restart"
    # The same notification again, and its copy from another Alertmanager to the other replica: nothing new.
    assert first.send(notification) == 200
    assert replicas[1].send(notification) == 200
    # Resolved: nothing.
    assert first.send(payload(alert(status="resolved", namespace=namespace, deployment="api"))) == 200
    drain(*replicas)
    assert len(jobs(k8s, namespace)) == 1
    assert [r["outcome"] for r in replicas[1].records()] == ["deduplicated"]


def test_two_replicas_racing_on_one_target_start_one_job(
    replicas: list[Replica], k8s: client.ApiClient, namespace: str
) -> None:
    for n in range(5):  # five targets; on each, two pods' alerts reach the two replicas at the same moment
        barrier = threading.Barrier(2)

        def send(i: int, target: int = n, gate: threading.Barrier = barrier) -> int:
            body = payload(
                alert(
                    fingerprint=f"b{i}{target:06d}",
                    namespace=namespace,
                    deployment=f"svc{target}",
                    pod=f"pod-{i}",
                )
            )
            gate.wait()
            return replicas[i].send(body)

        with ThreadPoolExecutor(2) as pool:
            assert list(pool.map(send, range(2))) == [200, 200]
    drain(*replicas)
    created = jobs(k8s, namespace)
    assert len(created) == 5
    assert len({j.metadata.labels["remediation.shorts.ops/target"] for j in created}) == 5


def test_the_lease_store_lets_exactly_one_of_many_concurrent_deciders_run(
    replicas: list[Replica], namespace: str
) -> None:
    """Optimistic concurrency on the Lease: 16 deciders (two stores, as two replicas) on one key, one run."""
    policy = GuardPolicy()
    stores = [replica.store for replica in replicas]
    key = "race|shorts/deployment/api"
    # The Lease exists already (a run two hours ago): the race is on replace, not on create.
    stores[0].update(key, lambda state: (None, GuardState(starts=[], last_start=time.time() - 7200)))
    barrier = threading.Barrier(16)

    def decide_once(i: int) -> str:
        def fn(state: GuardState) -> tuple[str, GuardState | None]:
            decision, new = decide(state, policy, f"alert-{i}", time.time())
            return decision.action, new if decision.action == "run" else None

        barrier.wait()
        return stores[i % 2].update(key, fn)

    with ThreadPoolExecutor(16) as pool:
        actions = list(pool.map(decide_once, range(16)))
    assert sorted(actions) == ["run"] + ["suppress"] * 15
    assert time.time() - (stores[1].get(key).last_start or 0) < 600


def test_a_second_firing_within_the_cooldown_creates_none_and_says_why_on_the_target(
    replicas: list[Replica], k8s: client.ApiClient, namespace: str
) -> None:
    a, b = replicas
    assert a.send(payload(alert(fingerprint="cccc0001", namespace=namespace, deployment="api"))) == 200
    drain(a)
    # A new episode of the alert (new startsAt), reaching the other replica: the cooldown lives in the Lease.
    assert (
        b.send(
            payload(
                alert(
                    fingerprint="cccc0001",
                    starts_at="2026-11-26T06:03:00Z",
                    namespace=namespace,
                    deployment="api",
                )
            )
        )
        == 200
    )
    drain(b)
    assert len(jobs(k8s, namespace)) == 1
    assert b.records()[-1]["reason"] == "cooldown"
    assert b.server.receiver.metrics.suppressed.value(reason="cooldown") == 1
    b.server.receiver.reconcile()  # flushes Events
    events = client.CoreV1Api(k8s).list_namespaced_event(namespace).items
    suppressed = [e for e in events if e.reason == "RemediationSuppressed"]
    assert len(suppressed) == 1
    assert (suppressed[0].involved_object.kind, suppressed[0].involved_object.name) == ("Deployment", "api")
    assert "cooldown" in suppressed[0].message
    a.server.receiver.reconcile()
    started = [
        e
        for e in client.CoreV1Api(k8s).list_namespaced_event(namespace).items
        if e.reason == "RemediationStarted"
    ]
    assert len(started) == 1 and started[0].involved_object.name == "api"
    leases = client.CoordinationV1Api(k8s).list_namespaced_lease(namespace).items
    assert len(leases) == 1
    assert json.loads(leases[0].metadata.annotations[STATE_ANNOTATION])["last_start"] is not None


def job_failed(k8s: client.ApiClient, namespace: str, name: str) -> bool:
    conditions = client.BatchV1Api(k8s).read_namespaced_job(name, namespace).status.conditions or []
    return any(c.type == "Failed" and c.status == "True" for c in conditions)


def test_after_repeated_failed_runs_the_breaker_escalates(
    failing_replicas: list[Replica], k8s: client.ApiClient, namespace: str
) -> None:
    a = failing_replicas[0]

    def fire(minute: int) -> None:
        started = f"2026-11-26T06:0{minute}:00Z"
        flaky = alert(
            "FlakyThing", fingerprint="dddd0001", starts_at=started, namespace=namespace, deployment="api"
        )
        assert a.send(payload(flaky)) == 200
        drain(a)

    for minute in range(2):
        fire(minute)
        newest = max(jobs(k8s, namespace), key=lambda j: j.metadata.creation_timestamp)
        failed = functools.partial(job_failed, k8s, namespace, newest.metadata.name)
        eventually(failed, 120, f"{newest.metadata.name} to fail at its deadline")
        eventually(lambda: a.server.receiver.reconcile() >= 1, 30, "the failure to be counted")
        time.sleep(1.1)  # the runbook's cooldown is 1s
    fire(5)
    created = jobs(k8s, namespace)
    modes = sorted(j.metadata.labels["remediation.shorts.ops/mode"] for j in created)
    assert modes == ["escalate", "run", "run"]
    escalation = next(j for j in created if j.metadata.labels["remediation.shorts.ops/mode"] == "escalate")
    assert "--escalate-only" in escalation.spec.template.spec.containers[0].command
    assert a.records()[-1]["reason"] == "breaker"


def test_after_the_budget_is_spent_the_escalation_runs_instead(
    replicas: list[Replica], k8s: client.ApiClient, namespace: str
) -> None:
    a, b = replicas
    assert a.send(payload(alert("RareThing", fingerprint="eeee0001", namespace=namespace))) == 200
    drain(a)
    time.sleep(1.1)  # past the 1s cooldown; the budget of one run per hour is spent
    assert (
        b.send(
            payload(
                alert(
                    "RareThing", fingerprint="eeee0001", starts_at="2026-11-26T06:02:00Z", namespace=namespace
                )
            )
        )
        == 200
    )
    drain(b)
    modes = sorted(j.metadata.labels["remediation.shorts.ops/mode"] for j in jobs(k8s, namespace))
    assert modes == ["escalate", "run"]
    assert b.records()[-1]["reason"] == "budget"


def test_a_storm_over_two_replicas_creates_at_most_one_job_per_target(
    replicas: list[Replica], k8s: client.ApiClient, namespace: str
) -> None:
    alerts = [
        alert(fingerprint=f"{i:08x}", namespace=namespace, deployment=f"svc-{i % 20:02d}")
        for i in range(1000)
    ]
    batches = [payload(*alerts[i : i + 10]) for i in range(0, 1000, 10)]
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda n: replicas[n % 2].send(batches[n]), range(len(batches))))
    assert statuses == [200] * 100
    drain(*replicas)
    created = jobs(k8s, namespace)
    assert len(created) == 20
    records = replicas[0].records() + replicas[1].records()
    assert len(records) == 1000
    assert {r["fingerprint"] for r in records} == {f"{i:08x}" for i in range(1000)}


def test_the_receiver_token_can_do_its_job_and_nothing_else(
    replicas: list[Replica], cluster: Cluster, k8s: client.ApiClient, namespace: str
) -> None:
    replicas[0].send(payload(alert(namespace=namespace, deployment="api")))
    drain(replicas[0])
    job = jobs(k8s, namespace)[0]
    batch, core = client.BatchV1Api(replicas[0].api), client.CoreV1Api(replicas[0].api)

    def status(call: Callable[[], Any]) -> int:
        try:
            call()
        except ApiException as exc:
            return int(exc.status)
        return 200

    assert status(lambda: batch.list_namespaced_job(namespace)) == 200
    assert status(lambda: batch.delete_namespaced_job(job.metadata.name, namespace)) == 403
    assert status(lambda: core.list_namespaced_secret(namespace)) == 403
    assert status(lambda: core.list_namespaced_pod(namespace)) == 403
    assert status(lambda: batch.list_namespaced_job("default")) == 403
