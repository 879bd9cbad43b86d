"""Kubernetes actions: restart, scale, wait for a rollout, CronJob freshness, Argo Rollouts promote/abort.

Everything here stays inside the remediation Role (get/patch on deployments, rollouts, rollouts/status and
HPAs; get on cronjobs): no /scale subresource, no deletes. The kubernetes client is synchronous, so each
call runs in a worker thread. How the client is built is one replaceable function, `client_factory`
(profile -> ApiClient), so tests can point the actions at any cluster.

Patches are JSON merge patches (RFC 7386), the same kind `kubectl patch --type merge` sends.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import urllib3

from remediation.actions._durations import duration_schema, parse_duration
from remediation.actions._lazy import LazyModule
from remediation.actions._params import params_schema, with_defaults
from remediation.actions.registry import ActionContext, Output, Params, action
from remediation.errors import ActionError, PermanentError, TemporaryError

if TYPE_CHECKING:
    from kubernetes import client as k8s
    from kubernetes import config as k8sconfig
else:  # imported on first use: see _lazy.py
    k8s = LazyModule("kubernetes.client")
    k8sconfig = LazyModule("kubernetes.config")

MERGE_PATCH = "application/merge-patch+json"
ROLLOUTS = ("argoproj.io", "v1alpha1", "rollouts")
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
POLL_SECONDS = 2.0
REQUEST_TIMEOUT = (5, 30)  # seconds to connect, to read: a hung API server must not hang the step

Obj = dict[str, Any]

# ---- the client -----------------------------------------------------------------------------------


def build_api_client(profile: Mapping[str, Any]) -> k8s.ApiClient:
    """In order: the profile's kubeconfig/kube_context; in a pod, its ServiceAccount; else ~/.kube."""
    configuration = k8s.Configuration()
    try:
        if profile.get("kubeconfig") or profile.get("kube_context"):
            k8sconfig.load_kube_config(
                config_file=profile.get("kubeconfig"),
                context=profile.get("kube_context"),
                client_configuration=configuration,
            )
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            k8sconfig.load_incluster_config(client_configuration=configuration)
        else:  # $KUBECONFIG (read now, not at import) or ~/.kube/config
            k8sconfig.load_kube_config(
                config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration
            )
    except (k8sconfig.ConfigException, OSError) as exc:
        raise PermanentError(
            f"cannot configure the Kubernetes client: {exc}; set kubeconfig (and kube_context) in the profile"
        ) from None
    configuration.retries = 0  # the executor owns retries; urllib3's own would hide an outage
    return k8s.ApiClient(configuration)


client_factory: Callable[[Mapping[str, Any]], k8s.ApiClient] = build_api_client


def api_error_detail(exc: Any) -> tuple[int, str]:
    """An ApiException's status and the API server's own message (its reason phrase when there is none)."""
    try:
        detail = json.loads(exc.body or "{}").get("message") or exc.reason
    except ValueError:
        detail = exc.reason
    return exc.status or 0, str(detail)


def _error(exc: Exception, what: str) -> ActionError:
    if isinstance(exc, k8s.ApiException):
        status, detail = api_error_detail(exc)
        output = {"status": status, "detail": detail}
        if status in (409, 429) or status >= 500:
            return TemporaryError(f"{what}: the API server answered {status} ({detail}); retry", output)
        if status == 404:
            return PermanentError(f"{what}: not found ({detail}); check the kind, name and namespace", output)
        if status in (401, 403):
            return PermanentError(
                f"{what}: forbidden ({detail}); the remediation ServiceAccount's Role does not allow it",
                output,
            )
        return PermanentError(f"{what}: the API server refused it with {status} ({detail})", output)
    return TemporaryError(
        f"{what}: the Kubernetes API server is unreachable ({exc}); retry when it is back",
        {"error": type(exc).__name__},
    )


async def _call(ctx: ActionContext, what: str, work: Callable[[k8s.ApiClient], Output]) -> Output:
    """Run `work` with a fresh client in a thread; API and network failures become ActionErrors."""

    def in_thread() -> Output:
        with client_factory(ctx.profile) as api:
            return work(api)

    try:
        return await asyncio.to_thread(in_thread)
    except (k8s.ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise _error(exc, what) from None


def _as_dict(api: k8s.ApiClient, obj: Any) -> Obj:
    """Typed models and custom objects alike as plain JSON-shaped dicts (camelCase keys)."""
    return obj if isinstance(obj, dict) else api.sanitize_for_serialization(obj)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _get(api: k8s.ApiClient, kind: str, name: str, ns: str) -> Obj:
    if kind == "Deployment":
        obj: Any = k8s.AppsV1Api(api).read_namespaced_deployment(name, ns, _request_timeout=REQUEST_TIMEOUT)
    elif kind == "HorizontalPodAutoscaler":
        obj = k8s.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler(
            name, ns, _request_timeout=REQUEST_TIMEOUT
        )
    else:
        obj = k8s.CustomObjectsApi(api).get_namespaced_custom_object(
            *ROLLOUTS[:2], ns, ROLLOUTS[2], name, _request_timeout=REQUEST_TIMEOUT
        )
    return _as_dict(api, obj)


def _patch(api: k8s.ApiClient, kind: str, name: str, ns: str, body: Obj, status: bool = False) -> None:
    how: dict[str, Any] = {"_content_type": MERGE_PATCH, "_request_timeout": REQUEST_TIMEOUT}
    if kind == "Deployment":
        k8s.AppsV1Api(api).patch_namespaced_deployment(name, ns, body, **how)
    elif kind == "HorizontalPodAutoscaler":
        k8s.AutoscalingV2Api(api).patch_namespaced_horizontal_pod_autoscaler(name, ns, body, **how)
    elif status:  # Argo Rollouts v0.10+ keep status in the status subresource: it is patched on its own
        k8s.CustomObjectsApi(api).patch_namespaced_custom_object_status(
            *ROLLOUTS[:2], ns, ROLLOUTS[2], name, body, **how
        )
    else:
        k8s.CustomObjectsApi(api).patch_namespaced_custom_object(
            *ROLLOUTS[:2], ns, ROLLOUTS[2], name, body, **how
        )


# ---- schemas --------------------------------------------------------------------------------------

_NAME = {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253}
_TARGET = {
    "name": {**_NAME, "description": "The object's name, e.g. api."},
    "namespace": {**_NAME, "maxLength": 63, "description": "Its namespace, e.g. ${params.namespace}."},
}


def _kind(kinds: list[str]) -> dict[str, Any]:
    return {"enum": kinds, "description": f"The kind of workload: {', '.join(kinds)}."}


RESTART_PARAMS = params_schema(
    {"kind": _kind(["Deployment", "Rollout"]), **_TARGET}, required=("kind", "name", "namespace")
)
SCALE_PARAMS = params_schema(
    {
        "kind": _kind(["Deployment", "Rollout", "HorizontalPodAutoscaler"]),
        **_TARGET,
        "by": {
            "type": "integer",
            "minimum": 1,
            "description": "Replicas to add (the manual's scale-out: 2).",
        },
        "max": {
            "type": "integer",
            "minimum": 1,
            "description": "Never go above this many replicas (for an HPA also bounded by its maxReplicas).",
        },
    },
    required=("kind", "name", "namespace", "by", "max"),
)
WAIT_PARAMS = params_schema(
    {
        "kind": _kind(["Deployment", "Rollout"]),
        **_TARGET,
        "timeout": duration_schema("Give up (temporary failure) after this long.", "5m"),
    },
    required=("kind", "name", "namespace"),
)
CRONJOB_PARAMS = params_schema(
    {
        **_TARGET,
        "max_age": duration_schema("Fail when the last successful run is older than this, e.g. 26h."),
    },
    required=("name", "namespace", "max_age"),
)
PROMOTE_PARAMS = params_schema(
    {
        **_TARGET,
        "full": {
            "type": "boolean",
            "default": False,
            "description": "Skip remaining steps, pauses and analysis (as promote --full).",
        },
    },
    required=("name", "namespace"),
)
ABORT_PARAMS = params_schema(dict(_TARGET), required=("name", "namespace"))


# ---- kubernetes.restart ---------------------------------------------------------------------------


def restart_patch(kind: str, at: str) -> Obj:
    """What `kubectl rollout restart` (Deployment) and `kubectl argo rollouts restart` (Rollout) patch."""
    if kind == "Rollout":
        return {"spec": {"restartAt": at}}
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}}


def describe_restart(params: Params) -> str:
    how = "set spec.restartAt" if params["kind"] == "Rollout" else f"set the pod template's {RESTARTED_AT}"
    return f"would restart {params['kind']} {params['namespace']}/{params['name']} ({how} to now)"


@action(
    "kubernetes.restart",
    summary="Rolling restart of a Deployment or an Argo Rollout (pods replaced one by one).",
    params=RESTART_PARAMS,
    mutates=True,
    describe=describe_restart,
    outputs=("restarted_at",),
)
async def restart(ctx: ActionContext, params: Params) -> Output:
    kind, name, ns = params["kind"], params["name"], params["namespace"]
    at = _now()

    def work(api: k8s.ApiClient) -> Output:
        _patch(api, kind, name, ns, restart_patch(kind, at))
        return {"restarted_at": at}

    return await _call(ctx, f"restart {kind} {ns}/{name}", work)


# ---- kubernetes.scale -----------------------------------------------------------------------------


def scale_target(current: int, by: int, bound: int, what: str) -> int:
    """current + by, capped at bound; PermanentError when that adds nothing (scaling cannot help here)."""
    target = min(current + by, bound)
    if target <= current:
        raise PermanentError(
            f"{what} is already at {current}, the limit is {bound}: scaling out cannot help; escalate",
            output={"from": current, "to": current},
        )
    return target


def describe_scale(params: Params) -> str:
    target = f"{params['kind']} {params['namespace']}/{params['name']}"
    field = "spec.minReplicas" if params["kind"] == "HorizontalPodAutoscaler" else "spec.replicas"
    return f"would raise {field} of {target} by {params['by']}, to at most {params['max']}"


@action(
    "kubernetes.scale",
    summary="Scale out by N replicas, bounded by a maximum; for an HPA, raise its minReplicas.",
    params=SCALE_PARAMS,
    mutates=True,
    describe=describe_scale,
    outputs=("from", "to"),
)
async def scale(ctx: ActionContext, params: Params) -> Output:
    kind, name, ns = params["kind"], params["name"], params["namespace"]
    what = f"{kind} {ns}/{name}"

    def work(api: k8s.ApiClient) -> Output:
        spec = _get(api, kind, name, ns).get("spec", {})
        if kind == "HorizontalPodAutoscaler":
            current = int(spec.get("minReplicas") or 1)
            bound = min(params["max"], int(spec.get("maxReplicas") or params["max"]))
            target = scale_target(current, params["by"], bound, f"{what} minReplicas")
            _patch(api, kind, name, ns, {"spec": {"minReplicas": target}})
        else:
            current = int(spec.get("replicas") or 1)
            target = scale_target(current, params["by"], params["max"], f"{what} replicas")
            _patch(api, kind, name, ns, {"spec": {"replicas": target}})
        return {"from": current, "to": target}

    return await _call(ctx, f"scale {what}", work)


# ---- kubernetes.wait_rollout ----------------------------------------------------------------------


def rollout_state(kind: str, obj: Obj) -> tuple[bool, int, str | None]:
    """(finished, ready replicas, failure) of a Deployment or Rollout, read from its status."""
    status, spec, meta = obj.get("status") or {}, obj.get("spec") or {}, obj.get("metadata") or {}
    ready = int(status.get("readyReplicas") or 0)
    if kind == "Rollout" and status.get("phase"):
        # Argo Rollouts sums it up in status.phase (Healthy, Progressing, Paused, Degraded).
        if status["phase"] == "Degraded":
            return False, ready, status.get("message") or "the rollout is degraded"
        current = str(status.get("observedGeneration", "")) in ("", str(meta.get("generation", "")))
        return status["phase"] == "Healthy" and current, ready, None
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return False, ready, condition.get("message") or "progress deadline exceeded"
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return False, ready, None
    desired = int(spec["replicas"]) if spec.get("replicas") is not None else 1
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    return updated >= desired and total <= updated and available >= updated, ready, None


def describe_wait(params: Params) -> str:
    p = with_defaults(WAIT_PARAMS, params)
    return (
        f"would wait up to {p['timeout']} for {p['kind']} {p['namespace']}/{p['name']} to finish rolling out"
    )


@action(
    "kubernetes.wait_rollout",
    summary="Wait until a Deployment or Rollout has all its replicas updated and ready.",
    params=WAIT_PARAMS,
    mutates=False,
    describe=describe_wait,
    outputs=("ready_replicas",),
)
async def wait_rollout(ctx: ActionContext, params: Params) -> Output:
    p = with_defaults(WAIT_PARAMS, params)
    kind, name, ns = p["kind"], p["name"], p["namespace"]
    what = f"{kind} {ns}/{name}"
    deadline = time.monotonic() + parse_duration(p["timeout"])
    while True:
        obj = await _call(ctx, f"read {what}", lambda api: _get(api, kind, name, ns))
        done, ready, failure = rollout_state(kind, obj)
        if failure:
            raise PermanentError(
                f"{what} failed: {failure}; consider the canary-abort runbook",
                output={"ready_replicas": ready},
            )
        if done:
            return {"ready_replicas": ready}
        if time.monotonic() >= deadline:
            raise TemporaryError(
                f"{what} did not finish rolling out within {p['timeout']} ({ready} ready); "
                "look at its pods' events",
                output={"ready_replicas": ready},
            )
        ctx.log(f"{what}: {ready} ready, waiting")
        await asyncio.sleep(POLL_SECONDS)


# ---- kubernetes.cronjob_last_success --------------------------------------------------------------


def describe_cronjob(params: Params) -> str:
    return (
        f"would check that CronJob {params['namespace']}/{params['name']} last succeeded "
        f"less than {params['max_age']} ago"
    )


@action(
    "kubernetes.cronjob_last_success",
    summary="Check that a CronJob (e.g. the daily backup) succeeded recently enough.",
    params=CRONJOB_PARAMS,
    mutates=False,
    describe=describe_cronjob,
    outputs=("last_success", "age_seconds"),
)
async def cronjob_last_success(ctx: ActionContext, params: Params) -> Output:
    name, ns = params["name"], params["namespace"]
    what = f"CronJob {ns}/{name}"

    def work(api: k8s.ApiClient) -> Output:
        cronjob = k8s.BatchV1Api(api).read_namespaced_cron_job(name, ns, _request_timeout=REQUEST_TIMEOUT)
        return {"at": cronjob.status.last_successful_time if cronjob.status else None}

    at = (await _call(ctx, f"read {what}", work))["at"]
    if at is None:
        raise PermanentError(
            f"{what} has never succeeded; look at its Jobs' logs",
            output={"last_success": None, "age_seconds": None},
        )
    age = round((datetime.now(UTC) - at).total_seconds())
    output = {"last_success": at.astimezone(UTC).isoformat(), "age_seconds": age}
    if age > parse_duration(params["max_age"]):
        raise PermanentError(
            f"{what} last succeeded {age // 3600}h{age % 3600 // 60:02d}m ago, "
            f"longer than {params['max_age']}; look at its recent Jobs",
            output=output,
        )
    return output


# ---- Argo Rollouts: promote and abort -------------------------------------------------------------


def promote_patches(rollout: Obj, full: bool) -> tuple[Obj | None, Obj | None]:
    """(spec patch, status patch) that promote `rollout`, as `kubectl argo rollouts promote` decides them.

    Full: status.promoteFull, unless the update is already the stable version. Otherwise: unpause the spec
    if it is paused, and clear the pause conditions; a canary held at no pause (e.g. mid-analysis)
    moves on to its next step instead.
    """
    spec, status = rollout.get("spec") or {}, rollout.get("status") or {}
    if full:
        if status.get("currentPodHash") == status.get("stableRS"):
            return None, None
        return None, {"status": {"promoteFull": True}}
    spec_patch = {"spec": {"paused": False}} if spec.get("paused") else None
    if status.get("pauseConditions"):
        return spec_patch, {"status": {"pauseConditions": None}}
    steps = ((spec.get("strategy") or {}).get("canary") or {}).get("steps") or []
    if not steps:
        return spec_patch, None
    index = min(int(status.get("currentStepIndex") or 0) + 1, len(steps))
    return spec_patch, {"status": {"pauseConditions": None, "currentStepIndex": index}}


def describe_promote(params: Params) -> str:
    p = with_defaults(PROMOTE_PARAMS, params)
    how = "fully (skipping remaining steps, pauses and analysis)" if p["full"] else "to its next step"
    return f"would promote Rollout {p['namespace']}/{p['name']} {how}"


@action(
    "kubernetes.rollout_promote",
    summary="Promote a paused Argo Rollout to its next canary step, or fully.",
    params=PROMOTE_PARAMS,
    mutates=True,
    describe=describe_promote,
    outputs=("promoted",),
)
async def rollout_promote(ctx: ActionContext, params: Params) -> Output:
    p = with_defaults(PROMOTE_PARAMS, params)
    name, ns = p["name"], p["namespace"]

    def work(api: k8s.ApiClient) -> Output:
        spec_patch, status_patch = promote_patches(_get(api, "Rollout", name, ns), p["full"])
        if status_patch is not None:  # status first, as the plugin does, so the controller sees both
            _patch(api, "Rollout", name, ns, status_patch, status=True)
        if spec_patch is not None:
            _patch(api, "Rollout", name, ns, spec_patch)
        return {"promoted": spec_patch is not None or status_patch is not None}

    output = await _call(ctx, f"promote Rollout {ns}/{name}", work)
    if not output["promoted"]:
        ctx.log(f"Rollout {ns}/{name} had nothing to promote")
    return output


def describe_abort(params: Params) -> str:
    return (
        f"would abort the update of Rollout {params['namespace']}/{params['name']} (traffic back to stable)"
    )


@action(
    "kubernetes.rollout_abort",
    summary="Abort an Argo Rollout's update: all traffic back to the stable version.",
    params=ABORT_PARAMS,
    mutates=True,
    describe=describe_abort,
    outputs=("aborted",),
)
async def rollout_abort(ctx: ActionContext, params: Params) -> Output:
    name, ns = params["name"], params["namespace"]

    def work(api: k8s.ApiClient) -> Output:
        _patch(api, "Rollout", name, ns, {"status": {"abort": True}}, status=True)
        return {"aborted": True}

    return await _call(ctx, f"abort Rollout {ns}/{name}", work)
