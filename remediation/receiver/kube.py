"""Kubernetes API client for the receiver: kubeconfig/context if given, else in-cluster in a Pod."""

from __future__ import annotations

import os

from kubernetes import client, config


def api_client(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """As the executor's actions do: explicit kubeconfig, else in-cluster, else the default kubeconfig."""
    configuration = client.Configuration()
    if kubeconfig or context:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)
    else:
        config.load_kube_config(client_configuration=configuration)
    # The worker pool shares one client: allow that many parallel connections.
    configuration.connection_pool_maxsize = 16
    return client.ApiClient(configuration)
