"""WebService: one of the Shorts web services (api, app, admin) as an Argo Rollouts canary.

The Rollout owns the pods; the HPA owns the replica count (so the Rollout sets none); Argo Rollouts moves
traffic between the stable and canary Services by rewriting the weights of a Traefik weighted service.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra import meta
from infra.canary import SERVICE_ARG, analysis_template_spec, canary_steps, traefik_service_id
from infra.meta import Obj
from infra.settings import Autoscaling, Canary, ServiceSettings

SERVICE_PORT = 80
POLICY_MOUNT = "/etc/shorts/policy"


@dataclass(frozen=True)
class WebServiceArgs:
    service: ServiceSettings
    namespace: pulumi.Input[str]
    namespace_name: str  # the same namespace as plain text, for names inside metric labels
    autoscaling: Autoscaling
    canary: Canary
    prometheus_url: str
    app_policy_config_map: pulumi.Input[str]


def stable_name(service: str) -> str:
    return f"{service}-stable"


def canary_name(service: str) -> str:
    return f"{service}-canary"


def weighted_name(service: str) -> str:
    return f"{service}-weighted"


def _probe(path: str, period: int, failures: int) -> Obj:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def container(svc: ServiceSettings, policy_map: pulumi.Input[str]) -> Obj:
    _, tmp_mount = meta.tmp_volume()
    return {
        "name": svc.name,
        "image": svc.image,
        "ports": [{"name": "http", "containerPort": svc.port, "protocol": "TCP"}],
        # The app enforces the same limits, TTLs and gzip settings the edge does (app policy ConfigMap).
        "envFrom": [{"configMapRef": {"name": policy_map}}],
        "env": [{"name": "SHORTS_POLICY_FILE", "value": f"{POLICY_MOUNT}/policy.json"}],
        # startup gives a slow boot 150 s before liveness may restart the container
        "startupProbe": _probe(svc.health_path, 5, 30),
        "livenessProbe": _probe(svc.health_path, 10, 3),
        "readinessProbe": _probe(svc.health_path, 5, 3),
        "resources": {
            "requests": {"cpu": svc.requests.cpu, "memory": svc.requests.memory},
            "limits": {"cpu": svc.limits.cpu, "memory": svc.limits.memory},
        },
        "securityContext": meta.container_security(),
        "volumeMounts": [tmp_mount, {"name": "app-policy", "mountPath": POLICY_MOUNT, "readOnly": True}],
    }


def pod_template(svc: ServiceSettings, policy_map: pulumi.Input[str]) -> Obj:
    tmp_volume, _ = meta.tmp_volume()
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": meta.selector(svc.name)},
        }
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]
    return {
        "metadata": {"labels": meta.labels(svc.name, "web")},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": meta.pod_security(),
            "terminationGracePeriodSeconds": 30,
            "topologySpreadConstraints": spread,
            "containers": [container(svc, policy_map)],
            "volumes": [tmp_volume, {"name": "app-policy", "configMap": {"name": policy_map}}],
        },
    }


def rollout_spec(args: WebServiceArgs) -> Obj:
    svc = args.service
    return {
        # No `replicas`: the HorizontalPodAutoscaler owns the count.
        "selector": {"matchLabels": meta.selector(svc.name)},
        "revisionHistoryLimit": 5,
        "progressDeadlineSeconds": 600,
        "template": pod_template(svc, args.app_policy_config_map),
        "strategy": {
            "canary": {
                "stableService": stable_name(svc.name),
                "canaryService": canary_name(svc.name),
                "trafficRouting": {"traefik": {"weightedTraefikServiceName": weighted_name(svc.name)}},
                "steps": canary_steps(args.canary),
                "analysis": {
                    "templates": [{"templateName": f"{svc.name}-canary-analysis"}],
                    "startingStep": 1,  # from the first 10-minute watch on
                    "args": [
                        {
                            "name": SERVICE_ARG,
                            "value": traefik_service_id(
                                args.namespace_name, canary_name(svc.name), SERVICE_PORT
                            ),
                        }
                    ],
                },
            }
        },
    }


def hpa_spec(svc: ServiceSettings, autoscaling: Autoscaling) -> Obj:
    def utilization(resource: str, percent: int) -> Obj:
        return {
            "type": "Resource",
            "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": percent}},
        }

    return {
        "scaleTargetRef": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": svc.name},
        "minReplicas": svc.min_replicas,
        "maxReplicas": svc.max_replicas,
        "metrics": [
            utilization("cpu", autoscaling.cpu_target_percent),
            utilization("memory", autoscaling.memory_target_percent),
        ],
        "behavior": {
            # Scale out fast (the manual's remedy for slow responses is "+2 instances"), in slowly.
            "scaleUp": {
                "stabilizationWindowSeconds": 0,
                "selectPolicy": "Max",
                "policies": [
                    {"type": "Pods", "value": autoscaling.scale_up_pods, "periodSeconds": 60},
                    {"type": "Percent", "value": 100, "periodSeconds": 60},
                ],
            },
            "scaleDown": {
                "stabilizationWindowSeconds": autoscaling.scale_down_stabilization_seconds,
                "selectPolicy": "Min",
                "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}],
            },
        },
    }


class WebService(pulumi.ComponentResource):
    def __init__(self, name: str, args: WebServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("shorts:web:WebService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        svc, ns = args.service, args.namespace

        self.services = [self._service(stable_name(svc.name), args, child)]
        self.services.append(self._service(canary_name(svc.name), args, child))
        weights = [
            {"name": s, "port": SERVICE_PORT, "weight": w}
            for s, w in ((stable_name(svc.name), 100), (canary_name(svc.name), 0))
        ]
        self.traefik_service = k8s.apiextensions.CustomResource(
            f"{svc.name}-weighted",
            api_version="traefik.io/v1alpha1",
            kind="TraefikService",
            metadata=meta.metadata(weighted_name(svc.name), ns, "web"),
            spec={"weighted": {"services": weights}},
            # Argo Rollouts rewrites these weights during a canary; Pulumi must not put them back.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["spec.weighted.services"]),
        )
        self.analysis = k8s.apiextensions.CustomResource(
            f"{svc.name}-canary-analysis",
            api_version="argoproj.io/v1alpha1",
            kind="AnalysisTemplate",
            metadata=meta.metadata(f"{svc.name}-canary-analysis", ns, "web"),
            spec=analysis_template_spec(args.canary, args.prometheus_url),
            opts=child,
        )
        self.rollout = k8s.apiextensions.CustomResource(
            f"{svc.name}-rollout",
            api_version="argoproj.io/v1alpha1",
            kind="Rollout",
            metadata=meta.metadata(svc.name, ns, "web"),
            spec=rollout_spec(args),
            # Not on the Services: pulumi-kubernetes waits until a Service has endpoints, which only this
            # Rollout's pods provide; the Argo controller itself retries until the Services exist.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.traefik_service, self.analysis]),
        )
        self.hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{svc.name}-hpa",
            metadata=meta.metadata(svc.name, ns, "web"),
            spec=meta.spec(hpa_spec(svc, args.autoscaling)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.rollout]),
        )
        self.pdb = k8s.policy.v1.PodDisruptionBudget(
            f"{svc.name}-pdb",
            metadata=meta.metadata(svc.name, ns, "web"),
            spec=meta.spec({"maxUnavailable": 1, "selector": {"matchLabels": meta.selector(svc.name)}}),
            opts=child,
        )
        self.rollout_name = meta.custom_resource_name(self.rollout)
        self.register_outputs(
            {
                "rollout": self.rollout_name,
                "stableService": self.services[0].metadata.name,
                "canaryService": self.services[1].metadata.name,
                "traefikService": meta.custom_resource_name(self.traefik_service),
                "hpa": self.hpa.metadata.name,
                "pdb": self.pdb.metadata.name,
            }
        )

    def _service(self, name: str, args: WebServiceArgs, opts: pulumi.ResourceOptions) -> k8s.core.v1.Service:
        # Argo Rollouts adds the pod-template hash to each Service's selector while a canary runs.
        return k8s.core.v1.Service(
            name,
            metadata=meta.metadata(name, args.namespace, "web"),
            spec=meta.spec(
                {
                    "type": "ClusterIP",
                    "selector": meta.selector(args.service.name),
                    "ports": [
                        {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
                    ],
                }
            ),
            opts=opts,
        )
