"""The local Kubernetes control plane, brought up once per test session by tools/cluster.

`cluster` reuses a cluster that is already running in the state directory ($SHORTS_CLUSTER_DIR, default
.state/cluster) and leaves it running; otherwise it starts one and stops it at the end of the session.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

PROJECT_DIR = Path(__file__).resolve().parents[2]
CLUSTER_TOOL = PROJECT_DIR / "tools" / "cluster"
KWOK_NODES = ("kwok-node-0", "kwok-node-1", "kwok-node-2")


def pinned_versions() -> dict[str, str]:
    """tools/versions.env as a dict: tests compare against the pinned versions, not copies of them."""
    pairs = {}
    for line in (PROJECT_DIR / "tools" / "versions.env").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def run_cluster_tool(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`tools/cluster ARGS` for the cluster in state_dir (`up` may build the control plane first)."""
    env = {**os.environ, "SHORTS_CLUSTER_DIR": str(state_dir)}
    return subprocess.run(
        [str(CLUSTER_TOOL), *args], env=env, capture_output=True, text=True, timeout=3600, check=False
    )


@dataclass(frozen=True)
class Cluster:
    """A running local cluster: where its kubeconfig and state are, and how to drive tools/cluster."""

    kubeconfig: Path
    state_dir: Path
    api_url: str

    def tool(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Runs `tools/cluster ARGS` against this cluster's state directory."""
        result = run_cluster_tool(self.state_dir, *args)
        if check and result.returncode != 0:
            raise AssertionError(
                f"tools/cluster {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    def api_client(self) -> client.ApiClient:
        """A client authenticated as the cluster admin (system:masters)."""
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def token_client(self, token: str) -> client.ApiClient:
        """A client that authenticates with a bearer token only (e.g. a ServiceAccount's)."""
        admin = self.api_client().configuration
        conf = client.Configuration()
        conf.host = admin.host
        conf.ssl_ca_cert = admin.ssl_ca_cert
        conf.api_key = {"authorization": f"Bearer {token}"}
        return client.ApiClient(conf)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    state_dir = Path(os.environ.get("SHORTS_CLUSTER_DIR", PROJECT_DIR / ".state" / "cluster")).resolve()
    already_running = run_cluster_tool(state_dir, "status").returncode == 0
    up = run_cluster_tool(state_dir, "up")
    if up.returncode != 0:
        pytest.fail(f"tools/cluster up failed ({up.returncode}):\n{up.stderr[-5000:]}", pytrace=False)
    kubeconfig = state_dir / "kubeconfig"
    api_url = config.new_client_from_config(config_file=str(kubeconfig)).configuration.host
    try:
        yield Cluster(kubeconfig=kubeconfig, state_dir=state_dir, api_url=api_url)
    finally:
        if not already_running:
            run_cluster_tool(state_dir, "down")


@pytest.fixture(scope="session")
def k8s(cluster: Cluster) -> client.ApiClient:
    """An admin API client for the session's cluster."""
    return cluster.api_client()


@pytest.fixture
def namespace(k8s: client.ApiClient) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (deletion finishes in the background)."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(k8s)
    core.create_namespace({"metadata": {"name": name}})
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise
