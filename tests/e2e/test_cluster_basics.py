"""The local control plane behaves like a real cluster: version, scheduling onto kwok nodes, RBAC, CRDs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.e2e.conftest import KWOK_NODES, Cluster, eventually, pinned_versions

pytestmark = pytest.mark.e2e


def status_of(call: Callable[[], Any]) -> int:
    """The HTTP status of an API call: 200 when it succeeds, the error's status otherwise."""
    try:
        call()
    except ApiException as exc:
        return int(exc.status)
    return 200


def test_api_server_reports_the_pinned_version(k8s: client.ApiClient) -> None:
    pinned = pinned_versions()["KUBERNETES_VERSION"]
    info = client.VersionApi(k8s).get_code()
    assert info.git_version == pinned
    assert (info.major, info.minor) == ("1", pinned.split(".")[1])
    assert info.git_tree_state == "clean"


def test_deployment_pods_become_ready_on_kwok_nodes(k8s: client.ApiClient, namespace: str) -> None:
    labels = {"app": "web"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1.0"}]},
            },
        },
    }
    apps = client.AppsV1Api(k8s)
    apps.create_namespaced_deployment(namespace, deployment)

    eventually(
        lambda: apps.read_namespaced_deployment("web", namespace).status.ready_replicas == 3,
        what="3 ready replicas",
    )
    pods = client.CoreV1Api(k8s).list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 3
    for pod in pods:
        assert pod.spec.node_name in KWOK_NODES
        assert pod.status.phase == "Running"
        assert pod.status.pod_ip, f"{pod.metadata.name} has no pod IP"
        ready = {c.type: c.status for c in pod.status.conditions}
        assert ready["Ready"] == "True"


def test_service_account_token_is_refused_until_a_role_allows_it(
    cluster: Cluster, k8s: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(k8s)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "probe"}})
    token = core.create_namespaced_service_account_token(
        "probe", namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    as_probe = client.CoreV1Api(cluster.token_client(token))

    # Authenticated (the token is valid) but not authorized: 403, not 401.
    assert status_of(lambda: as_probe.list_namespaced_pod(namespace)) == 403

    rbac = client.RbacAuthorizationV1Api(k8s)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "probe-reads-pods"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "probe", "namespace": namespace}],
        },
    )
    eventually(
        lambda: status_of(lambda: as_probe.list_namespaced_pod(namespace)) == 200, what="RBAC to allow"
    )
    # The binding grants exactly pods: Secrets here and pods in another namespace stay refused.
    assert status_of(lambda: as_probe.list_namespaced_secret(namespace)) == 403
    assert status_of(lambda: as_probe.list_namespaced_pod("kube-system")) == 403
    # A forged token is not a ServiceAccount at all: 401.
    forged = client.CoreV1Api(cluster.token_client(token[:-4] + "AAAA"))
    assert status_of(lambda: forged.list_namespaced_pod(namespace)) == 401


def test_controller_manager_publishes_the_cluster_ca_in_each_namespace(
    cluster: Cluster, k8s: client.ApiClient, namespace: str
) -> None:
    # Pods find the API server's CA here; it comes from kube-controller-manager's --root-ca-file.
    core = client.CoreV1Api(k8s)
    root_ca = eventually(
        lambda: (
            status_of(lambda: core.read_namespaced_config_map("kube-root-ca.crt", namespace)) == 200
            and core.read_namespaced_config_map("kube-root-ca.crt", namespace)
        ),
        what="kube-root-ca.crt",
    )
    with open(cluster.api_client().configuration.ssl_ca_cert) as ca_file:
        assert root_ca.data["ca.crt"].strip() == ca_file.read().strip()


EXPECTED_CRDS = [
    "rollouts.argoproj.io",
    "analysistemplates.argoproj.io",
    "ingressroutes.traefik.io",
    "middlewares.traefik.io",
    "traefikservices.traefik.io",
    "prometheusrules.monitoring.coreos.com",
    "servicemonitors.monitoring.coreos.com",
]


@pytest.mark.parametrize("name", EXPECTED_CRDS)
def test_crd_is_established(k8s: client.ApiClient, name: str) -> None:
    crd = client.ApiextensionsV1Api(k8s).read_custom_resource_definition(name)
    conditions = {c.type: c.status for c in crd.status.conditions}
    assert conditions.get("Established") == "True"


def rollout(name: str, replicas: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": name, "image": "registry.invalid/api:1.0"}]},
            },
            "strategy": {"canary": {"steps": [{"setWeight": 5}, {"pause": {"duration": "10m"}}]}},
        },
    }


def test_rollout_can_be_created_and_its_schema_is_enforced(k8s: client.ApiClient, namespace: str) -> None:
    custom = client.CustomObjectsApi(k8s)
    custom.create_namespaced_custom_object(
        "argoproj.io", "v1alpha1", namespace, "rollouts", rollout("api", 2)
    )
    stored = custom.get_namespaced_custom_object("argoproj.io", "v1alpha1", namespace, "rollouts", "api")
    assert stored["spec"]["strategy"]["canary"]["steps"] == [{"setWeight": 5}, {"pause": {"duration": "10m"}}]

    # The CRD's structural schema is live: a string where an integer belongs is rejected.
    bad = rollout("bad", "three")
    assert (
        status_of(
            lambda: custom.create_namespaced_custom_object(
                "argoproj.io", "v1alpha1", namespace, "rollouts", bad
            )
        )
        == 422
    )
