"""tools/cluster as a user drives it: `up` twice is one cluster; a stopped API server returns with data."""

from __future__ import annotations

import pytest
from kubernetes import client
from urllib3.exceptions import MaxRetryError

from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.e2e

COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]


def pids(cluster: Cluster) -> dict[str, str]:
    return {name: (cluster.state_dir / "run" / f"{name}.pid").read_text().strip() for name in COMPONENTS}


def test_up_on_a_running_cluster_keeps_the_same_cluster(cluster: Cluster) -> None:
    before = pids(cluster)
    cluster.tool("up")
    assert pids(cluster) == before
    assert cluster.api_client().configuration.host == cluster.api_url


def test_env_prints_the_kubeconfig_export(cluster: Cluster) -> None:
    assert cluster.tool("env").stdout.strip() == f"export KUBECONFIG={cluster.kubeconfig}"


def test_a_stopped_api_server_comes_back_with_its_data(cluster: Cluster, k8s: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s)
    created = core.create_namespaced_config_map(
        "default", {"metadata": {"generateName": "survivor-"}, "data": {"k": "v"}}
    )
    name = created.metadata.name
    try:
        cluster.tool("stop", "kube-apiserver")
        status = cluster.tool("status", check=False)
        assert status.returncode != 0
        assert "kube-apiserver" in status.stdout and "stopped" in status.stdout
        with pytest.raises(MaxRetryError):  # the port is closed: connection refused
            client.CoreV1Api(cluster.api_client()).read_namespace("default", _request_timeout=3)
    finally:
        cluster.tool("up")
    assert core.read_namespaced_config_map(name, "default").data == {"k": "v"}
    assert cluster.tool("status").returncode == 0
    core.delete_namespaced_config_map(name, "default")
