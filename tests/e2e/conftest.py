"""The local Kubernetes control plane, brought up once per test session by tools/cluster.

`cluster` reuses a cluster that is already running in the state directory ($SHORTS_CLUSTER_DIR, default
.state/cluster) and leaves it running; otherwise it starts one and stops it at the end of the session.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
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


def eventually(check: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """Polls `check` until it returns something truthy, and returns that; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.3)
    return result


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


def bound_service_account_token(
    admin: client.ApiClient, namespace: str, name: str, rules: list[dict[str, Any]]
) -> str:
    """A one-hour token of a new ServiceAccount `name`, bound to a new Role `name` with exactly `rules`.

    Returns once the binding is in force (RBAC caches settle within moments), checked on the first rule.
    """
    core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": name}})
    rbac.create_namespaced_role(namespace, {"metadata": {"name": name}, "rules": rules})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    })  # fmt: skip
    token = core.create_namespaced_service_account_token(
        name, namespace, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    first = rules[0]
    attributes = {"namespace": namespace, "verb": first["verbs"][0], "group": first["apiGroups"][0]}
    attributes["resource"] = first["resources"][0]
    review = {"spec": {"user": f"system:serviceaccount:{namespace}:{name}", "resourceAttributes": attributes}}
    auth = client.AuthorizationV1Api(admin)
    eventually(lambda: auth.create_subject_access_review(review).status.allowed, what=f"RoleBinding {name}")
    return str(token)


def write_token_kubeconfig(admin: client.ApiClient, token: str, path: Path) -> Path:
    """A kubeconfig for the admin's cluster that holds only `token`: what a ServiceAccount's Job has."""
    conf = admin.configuration
    server = {"server": conf.host, "certificate-authority": conf.ssl_ca_cert}
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": server}],
        "users": [{"name": "token", "user": {"token": token}}],
        "contexts": [{"name": "token", "context": {"cluster": "local", "user": "token"}}],
        "current-context": "token",
    }
    path.write_text(yaml.safe_dump(kubeconfig))
    return path


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    state_dir = Path(os.environ.get("SHORTS_CLUSTER_DIR", PROJECT_DIR / ".state" / "cluster")).resolve()
    # Running processes, not a ready API, decide whose cluster this is: an API slow to answer under load must
    # not make this session stop a cluster that another session (or a developer) started.
    already_running = "running (pid" in run_cluster_tool(state_dir, "status").stdout
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
