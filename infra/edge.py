"""The edge: Traefik routes and middlewares, and the app policy the services enforce themselves.

Traefik applies per-tier rate limits, compression and Cache-Control; the same numbers go to the services in
the `app-policy` ConfigMap, so a request that bypasses the edge (or a gzip level Traefik cannot set) gets the
manual's behaviour too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra import meta
from infra.meta import Obj
from infra.settings import Caching, Compression, RateLimits
from infra.web_service import weighted_name

TIERS = ("anonymous", "authenticated", "premium")
APP_POLICY_NAME = "app-policy"

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def duration_ms(text: str) -> int:
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit) and text[: -len(unit)].isdigit():
            return int(text[: -len(unit)]) * _UNIT_MS[unit]
    raise ValueError(f"not a duration: {text!r}")


# ---------------------------------------------------------------- app policy


@dataclass(frozen=True)
class AppPolicyArgs:
    namespace: pulumi.Input[str]
    rate_limits: RateLimits
    caching: Caching
    compression: Compression


def cache_control(max_age: int, immutable: bool = False) -> str:
    return f"public, max-age={max_age}" + (", immutable" if immutable else "")


def app_policy_data(args: AppPolicyArgs) -> dict[str, str]:
    r, c, z = args.rate_limits, args.caching, args.compression
    document = {
        "rateLimiting": {
            "window": r.period,
            "windowMs": duration_ms(r.period),
            "max": r.tiers(),
            "tierHeader": r.tier_header,
            "identityHeader": r.identity_header,
        },
        "caching": {
            "static": {"pathPrefix": c.static_path_prefix, "maxAgeSeconds": c.static_max_age_seconds},
            "api": {"/api/trending": c.trending_max_age_seconds, "/api/search": c.search_max_age_seconds},
        },
        "compression": {"enable": True, "level": z.gzip_level, "threshold": z.min_bytes},
    }
    flat = {
        "RATE_LIMIT_WINDOW_MS": duration_ms(r.period),
        "RATE_LIMIT_ANONYMOUS": r.anonymous,
        "RATE_LIMIT_AUTHENTICATED": r.authenticated,
        "RATE_LIMIT_PREMIUM": r.premium,
        "CACHE_STATIC_MAX_AGE": c.static_max_age_seconds,
        "CACHE_TRENDING_MAX_AGE": c.trending_max_age_seconds,
        "CACHE_SEARCH_MAX_AGE": c.search_max_age_seconds,
        "GZIP_LEVEL": z.gzip_level,
        "GZIP_THRESHOLD": z.min_bytes,
    }
    return {
        "policy.json": json.dumps(document, indent=2, sort_keys=True),
        **{k: str(v) for k, v in flat.items()},
    }


class AppPolicy(pulumi.ComponentResource):
    def __init__(self, name: str, args: AppPolicyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("shorts:edge:AppPolicy", name, None, opts)
        # Immutable, like the runbooks: the remediation Role may update ConfigMaps (its run records), and a
        # runbook Job must never be able to loosen the service's own limits. A change replaces it; the name
        # is fixed (the pods mount it by name), so the old one is deleted first.
        self.config_map = k8s.core.v1.ConfigMap(
            APP_POLICY_NAME,
            metadata=meta.metadata(APP_POLICY_NAME, args.namespace, "edge"),
            data=app_policy_data(args),
            immutable=True,
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        self.name: pulumi.Output[str] = self.config_map.metadata.name
        self.register_outputs({"configMap": self.name})


# ---------------------------------------------------------------- traefik


@dataclass(frozen=True)
class Host:
    service: str  # the web service behind it
    hostname: str
    paths: tuple[str, ...]  # path classes with their own Cache-Control: "static", "trending", "search"


@dataclass(frozen=True)
class EdgeArgs:
    namespace: pulumi.Input[str]
    hosts: tuple[Host, ...]
    rate_limits: RateLimits
    caching: Caching
    compression: Compression
    tls: bool


def rate_limit_spec(tier: str, limit: int, rate_limits: RateLimits) -> Obj:
    if tier == "anonymous":
        # Anonymous clients have no identity: key by client IP (depth > 0 reads X-Forwarded-For).
        criterion: Obj = {"ipStrategy": {"depth": rate_limits.client_ip_depth}}
    else:
        # Signed-in users are keyed by the identity header the auth layer in front of Traefik sets.
        criterion = {"requestHeaderName": rate_limits.identity_header}
    # burst = the whole window's budget, like the manual's fixed-window express-rate-limit.
    return {
        "rateLimit": {
            "average": limit,
            "period": rate_limits.period,
            "burst": limit,
            "sourceCriterion": criterion,
        }
    }


def middleware_specs(args: EdgeArgs) -> dict[str, Obj]:
    c = args.caching
    specs = {
        f"ratelimit-{tier}": rate_limit_spec(tier, n, args.rate_limits)
        for tier, n in args.rate_limits.tiers().items()
    }
    specs["compress"] = {"compress": {"minResponseBodyBytes": args.compression.min_bytes}}
    for path_class, max_age, immutable in (
        ("static", c.static_max_age_seconds, True),
        ("trending", c.trending_max_age_seconds, False),
        ("search", c.search_max_age_seconds, False),
    ):
        specs[f"cache-{path_class}"] = {
            "headers": {"customResponseHeaders": {"Cache-Control": cache_control(max_age, immutable)}}
        }
    return specs


def path_prefix(path_class: str, caching: Caching) -> str:
    return {"static": caching.static_path_prefix, "trending": "/api/trending", "search": "/api/search"}[
        path_class
    ]


def routes(host: Host, args: EdgeArgs) -> list[Obj]:
    """One route per (tier, path class): the tier header picks the rate limit, the path the Cache-Control."""
    out: list[Obj] = []
    for tier in TIERS:
        for path_class in (*host.paths, None):
            match = f"Host(`{host.hostname}`)"
            if path_class:
                match += f" && PathPrefix(`{path_prefix(path_class, args.caching)}`)"
            if tier != "anonymous":
                match += f" && Header(`{args.rate_limits.tier_header}`, `{tier}`)"
            middlewares = [{"name": f"ratelimit-{tier}"}, {"name": "compress"}]
            if path_class:
                middlewares.append({"name": f"cache-{path_class}"})
            out.append(
                {
                    "kind": "Rule",
                    "match": match,
                    # A tier header outranks a path, both outrank the catch-all anonymous route.
                    "priority": 10 + (20 if tier != "anonymous" else 0) + (10 if path_class else 0),
                    "middlewares": middlewares,
                    "services": [{"kind": "TraefikService", "name": weighted_name(host.service)}],
                }
            )
    return out


class Edge(pulumi.ComponentResource):
    def __init__(self, name: str, args: EdgeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("shorts:edge:Edge", name, None, opts)
        self.middlewares = [
            k8s.apiextensions.CustomResource(
                f"middleware-{mw_name}",
                api_version="traefik.io/v1alpha1",
                kind="Middleware",
                metadata=meta.metadata(mw_name, args.namespace, "edge"),
                spec=mw_spec,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for mw_name, mw_spec in middleware_specs(args).items()
        ]
        self.routes = [
            k8s.apiextensions.CustomResource(
                f"route-{host.service}",
                api_version="traefik.io/v1alpha1",
                kind="IngressRoute",
                metadata=meta.metadata(host.service, args.namespace, "edge"),
                spec=self._route_spec(host, args),
                opts=pulumi.ResourceOptions(parent=self, depends_on=self.middlewares),
            )
            for host in args.hosts
        ]
        self.register_outputs(
            {
                "hosts": [h.hostname for h in args.hosts],
                "routes": [r.urn for r in self.routes],
                "middlewares": [m.urn for m in self.middlewares],
            }
        )

    @staticmethod
    def _route_spec(host: Host, args: EdgeArgs) -> Obj:
        spec: Obj = {"entryPoints": ["websecure" if args.tls else "web"], "routes": routes(host, args)}
        if args.tls:
            spec["tls"] = {}  # Traefik's default certificate store holds the certificate
        return spec
