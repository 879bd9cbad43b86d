"""The alert receiver: `remediation serve` as a Deployment behind a Service, fenced by a NetworkPolicy, under
its own ServiceAccount whose Role can only start Jobs, write Events and keep the guard Leases.

The receiver never runs remediation itself: it creates Jobs that run under the `remediation` ServiceAccount
(declared by infra/operations.py). So its own identity needs no access to the workloads at all.

The bearer token is referenced, never created here: `receiver.tokenSecret` names a Secret that operators
create (and Alertmanager's side mounts too), so the token stays out of the stack files and the Pulumi state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra import meta
from infra.meta import Obj
from infra.operations import SECRETS_NAME
from infra.settings import PodSelector, Receiver

NAME = "remediation-receiver"
COMPONENT = "alert-receiver"
RUNBOOKS_DIR = "/runbooks"  # where `remediation serve` reads the runbooks (its --runbooks-dir default)
TOKEN_DIR = "/etc/remediation-receiver"
TOKEN_FILE = f"{TOKEN_DIR}/token"
PORT_NAME = "http"

# (apiGroup, resource, verbs): what the receiver's code calls, nothing more.
RECEIVER_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("batch", "jobs", ("create", "list")),  # start a run; list finished ones for the circuit breaker
    ("coordination.k8s.io", "leases", ("get", "create", "update")),  # guard state per (runbook, target)
    ("", "events", ("create", "patch")),  # every suppression recorded on its target
    ("events.k8s.io", "events", ("create", "patch")),
)


RUNBOOKS_DIGEST_ANNOTATION = "shorts.ops/runbooks-sha256"


@dataclass(frozen=True)
class AlertReceiverArgs:
    namespace: pulumi.Input[str]
    namespace_name: str  # the plain name, for the receiver's --namespace and the RoleBinding subject
    settings: Receiver
    image: str  # the remediation image: `remediation serve` here, `remediation run` in the Jobs it creates
    runbooks_config_map: pulumi.Input[str]
    profile_config_map: pulumi.Input[str]
    # sha256 of the runbooks: a changed set replaces the immutable ConfigMap under the same name, which alone
    # would not restart the receiver, and it loads the runbooks only when it starts.
    runbooks_digest: str = ""


def receiver_rules() -> list[Obj]:
    return [
        {"apiGroups": [group], "resources": [resource], "verbs": list(verbs)}
        for group, resource, verbs in RECEIVER_RULES
    ]


def serve_args(args: AlertReceiverArgs) -> list[pulumi.Input[str]]:
    """The `remediation serve` command line; tests parse it with the receiver's own argument parser."""
    s = args.settings
    return [
        "serve",
        "--listen", f"0.0.0.0:{s.port}",
        "--namespace", args.namespace_name,
        "--token-file", TOKEN_FILE,
        "--runbooks-dir", RUNBOOKS_DIR,
        "--runbooks-configmap", args.runbooks_config_map,
        "--profile-configmap", args.profile_config_map,
        "--secret-name", SECRETS_NAME,
        "--image", args.image,
        "--job-deadline", s.job_deadline,
        "--cooldown", s.cooldown,
        "--budget", s.budget,
        "--breaker-failures", str(s.breaker_failures),
        "--max-body", str(s.max_body_bytes),
    ]  # fmt: skip


def _probe(path: str, period: int, failures: int) -> Obj:
    return {
        "httpGet": {"path": path, "port": PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def container(args: AlertReceiverArgs) -> Obj:
    s = args.settings
    _, tmp_mount = meta.tmp_volume()
    return {
        "name": "receiver",
        "image": args.image,
        "command": ["remediation"],
        "args": serve_args(args),
        "ports": [{"name": PORT_NAME, "containerPort": s.port, "protocol": "TCP"}],
        # /healthz answers 503 once the worker threads stop: restart, and leave the Service meanwhile.
        "startupProbe": _probe("/healthz", 2, 30),  # loading and validating every runbook comes first
        "livenessProbe": _probe("/healthz", 10, 3),
        "readinessProbe": _probe("/healthz", 5, 2),
        "resources": {
            "requests": {"cpu": s.requests.cpu, "memory": s.requests.memory},
            "limits": {"cpu": s.limits.cpu, "memory": s.limits.memory},
        },
        "securityContext": meta.container_security(),
        "volumeMounts": [
            tmp_mount,
            {"name": "runbooks", "mountPath": RUNBOOKS_DIR, "readOnly": True},
            # A directory, not subPath: the kubelet refreshes it, the receiver re-reads a rotated token.
            {"name": "token", "mountPath": TOKEN_DIR, "readOnly": True},
        ],
    }


def pod_spec(args: AlertReceiverArgs) -> Obj:
    s = args.settings
    tmp_volume, _ = meta.tmp_volume()
    return {
        "serviceAccountName": NAME,
        "automountServiceAccountToken": True,  # it calls the API server (Jobs, Leases, Events)
        "securityContext": meta.pod_security(),
        "terminationGracePeriodSeconds": 30,  # SIGTERM drains the queue of accepted alerts first
        "containers": [container(args)],
        "volumes": [
            tmp_volume,
            {"name": "runbooks", "configMap": {"name": args.runbooks_config_map}},
            {
                "name": "token",
                "secret": {
                    "secretName": s.token_secret,
                    "items": [{"key": s.token_key, "path": "token"}],
                    "defaultMode": 0o440,  # readable by the pod's fsGroup only
                },
            },
        ],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": meta.selector(NAME)},
            }
        ],
    }


def deployment_spec(args: AlertReceiverArgs) -> Obj:
    # Not HPA-owned, so the replica count is ours to set. Several replicas are safe together: Job names are
    # deterministic (a second create is AlreadyExists) and guard Leases are written with resourceVersion.
    return {
        "replicas": args.settings.replicas,
        "revisionHistoryLimit": 3,
        "selector": {"matchLabels": meta.selector(NAME)},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": {
            "metadata": {
                "labels": meta.labels(NAME, COMPONENT),
                "annotations": {RUNBOOKS_DIGEST_ANNOTATION: args.runbooks_digest},
            },
            "spec": pod_spec(args),
        },
    }


def _peer(pods: PodSelector) -> Obj:
    # Both selectors in one peer: these pods in that namespace (two peers would mean either).
    return {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": pods.namespace}},
        "podSelector": {"matchLabels": dict(pods.labels)},
    }


def network_policy_spec(s: Receiver) -> Obj:
    """Ingress: Alertmanager (POST /alerts) and Prometheus (GET /metrics) on the receiver port only.
    Egress: the API server and cluster DNS only.

    NetworkPolicy works at L3/L4: it cannot tell /alerts from /metrics (both share the port), so Prometheus
    could reach /alerts too; the bearer token is what keeps it, and anyone else inside, from starting runs.
    The API server is not a pod that labels can select: it is reached by its endpoint addresses (after the
    `kubernetes` Service's DNAT, which is what most CNIs evaluate), given in receiver.apiServer.
    """
    return {
        "podSelector": {"matchLabels": meta.selector(NAME)},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {
                "from": [_peer(s.alertmanager), _peer(s.prometheus)],
                "ports": [{"protocol": "TCP", "port": s.port}],
            }
        ],
        "egress": [
            {
                "to": [{"ipBlock": {"cidr": cidr}} for cidr in s.api_server_cidrs],
                "ports": [{"protocol": "TCP", "port": port} for port in s.api_server_ports],
            },
            {
                "to": [_peer(s.dns)],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            },
        ],
    }


def service_monitor_spec() -> Obj:
    return {
        "selector": {"matchLabels": meta.selector(NAME)},
        "endpoints": [{"port": PORT_NAME, "path": "/metrics", "interval": "30s", "scheme": "http"}],
    }


class AlertReceiver(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: AlertReceiverArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("shorts:operations:AlertReceiver", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns, s = args.namespace, args.settings

        def md(**extra: Any) -> Any:
            return meta.metadata(NAME, ns, COMPONENT, **extra)

        self.service_account = k8s.core.v1.ServiceAccount("receiver-sa", metadata=md(), opts=child)
        self.role = k8s.rbac.v1.Role(
            "receiver-role", metadata=md(), rules=meta.spec(receiver_rules()), opts=child
        )
        self.role_binding = k8s.rbac.v1.RoleBinding(
            "receiver-rolebinding",
            metadata=md(),
            role_ref=meta.spec({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME}),
            subjects=meta.spec([{"kind": "ServiceAccount", "name": NAME, "namespace": args.namespace_name}]),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role, self.service_account]),
        )
        self.network_policy = k8s.networking.v1.NetworkPolicy(
            "receiver-netpol", metadata=md(), spec=meta.spec(network_policy_spec(s)), opts=child
        )
        self.deployment = k8s.apps.v1.Deployment(
            "receiver",
            metadata=md(),
            spec=meta.spec(deployment_spec(args)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role_binding, self.network_policy]),
        )
        self.service = k8s.core.v1.Service(
            "receiver-service",
            metadata=md(),
            spec=meta.spec(
                {
                    "type": "ClusterIP",
                    "selector": meta.selector(NAME),
                    "ports": [
                        {"name": PORT_NAME, "port": s.port, "targetPort": PORT_NAME, "protocol": "TCP"}
                    ],
                }
            ),
            opts=child,
        )
        # prometheus-operator scrapes /metrics (received, deduplicated, suppressed, Jobs, failures, latency).
        self.service_monitor = k8s.apiextensions.CustomResource(
            "receiver-servicemonitor",
            api_version="monitoring.coreos.com/v1",
            kind="ServiceMonitor",
            metadata=md(),
            spec=service_monitor_spec(),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.service]),
        )
        self.disruption_budget: k8s.policy.v1.PodDisruptionBudget | None = None
        if s.replicas > 1:  # with one replica, a PDB would only block node drains
            self.disruption_budget = k8s.policy.v1.PodDisruptionBudget(
                "receiver-pdb",
                metadata=md(),
                spec=meta.spec({"minAvailable": 1, "selector": {"matchLabels": meta.selector(NAME)}}),
                opts=child,
            )
        self.url: pulumi.Output[str] = pulumi.Output.concat(
            "http://", self.service.metadata.name, ".", args.namespace_name, ".svc:", str(s.port), "/alerts"
        )
        self.register_outputs(
            {
                "serviceAccount": self.service_account.metadata.name,
                "role": self.role.metadata.name,
                "deployment": self.deployment.metadata.name,
                "url": self.url,
            }
        )
