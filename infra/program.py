"""The whole platform for one stack: settings in, components out, a few stack outputs for users and CI."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.alerts import Alerting, AlertingArgs
from infra.edge import AppPolicy, AppPolicyArgs, Edge, EdgeArgs, Host
from infra.operations import Operations, OperationsArgs
from infra.receiver import AlertReceiver, AlertReceiverArgs
from infra.settings import Settings, load_settings
from infra.web_service import WebService, WebServiceArgs

# Which path classes (each with its own Cache-Control) each host serves.
HOST_PATHS = {"api": ("trending", "search"), "app": ("static",), "admin": ("static",)}


def provider(settings: Settings) -> k8s.Provider:
    if settings.render_directory:
        # No cluster at all: pulumi-kubernetes writes the manifests into this directory instead. The SDK
        # defaults `kubeconfig` to $KUBECONFIG, which the provider refuses next to renderYamlToDirectory;
        # an empty one is "not given", so rendering works whatever KUBECONFIG says.
        return k8s.Provider("k8s", render_yaml_to_directory=settings.render_directory, kubeconfig="")
    return k8s.Provider("k8s")


def build_platform(settings: Settings) -> dict[str, pulumi.Input[object]]:
    opts = pulumi.ResourceOptions(providers=[provider(settings)])
    profile = dict(settings.remediation.profile)
    profile.setdefault("prometheus_url", settings.prometheus_url)
    ops = Operations(
        "operations",
        OperationsArgs(settings.namespace, settings.schedules, settings.remediation.image, profile),
        opts=opts,
    )
    ns = ops.namespace_name
    policy = AppPolicy(
        "app-policy",
        AppPolicyArgs(ns, settings.rate_limits, settings.caching, settings.compression),
        opts=opts,
    )
    services = {
        svc.name: WebService(
            svc.name,
            WebServiceArgs(
                service=svc,
                namespace=ns,
                namespace_name=settings.namespace,
                autoscaling=settings.autoscaling,
                canary=settings.canary,
                prometheus_url=settings.prometheus_url,
                app_policy_config_map=policy.name,
            ),
            opts=opts,
        )
        for svc in settings.services
    }
    hosts = tuple(Host(name, f"{name}.{settings.domain}", HOST_PATHS[name]) for name in services)
    tls = profile["api_url"].startswith(
        "https://"
    )  # the public URL's scheme says whether the edge serves TLS
    Edge(
        "edge",
        EdgeArgs(ns, hosts, settings.rate_limits, settings.caching, settings.compression, tls),
        opts=opts,
    )
    Alerting("alerts", AlertingArgs(ns, settings.namespace, settings.alerts), opts=opts)
    receiver = AlertReceiver(
        "alert-receiver",
        AlertReceiverArgs(
            namespace=ns,
            namespace_name=settings.namespace,
            settings=settings.receiver,
            image=settings.remediation.image,
            runbooks_config_map=ops.runbooks.metadata.name,
            profile_config_map=ops.profile.metadata.name,
            runbooks_digest=ops.runbooks_digest,
        ),
        opts=opts,
    )
    return {
        "namespace": ns,
        "hosts": [h.hostname for h in hosts],
        "rollouts": [s.rollout_name for s in services.values()],
        "canaryWeights": list(settings.canary.weights),
        "cronJobs": [c.metadata.name for c in ops.cron_jobs],
        "alertReceiverUrl": receiver.url,  # the webhook_configs url of docs/alertmanager.md
    }


def main() -> None:
    for key, value in build_platform(load_settings()).items():
        pulumi.export(key, value)
