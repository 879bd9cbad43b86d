"""The operations manual's numbers, in one place.

The production stack carries exactly these values; a settings error suggests them as the fix, so a user who
breaks a setting is led back to what the manual asks for. Values the manual does not give (images, hosts,
replica counts) are stack-specific and have no entry here.
"""

from __future__ import annotations

from typing import Any

# setting path (dotted, as `pulumi config set --path` takes it) -> the manual's value
MANUAL_VALUES: dict[str, Any] = {
    "namespace": "shorts",
    "autoscaling.cpuTargetPercent": 70,  # Grafana check: CPU < 70 %
    "autoscaling.memoryTargetPercent": 80,  # memory < 80 %
    "autoscaling.scaleUpPods": 2,  # scale-out: current instances + 2
    "autoscaling.scaleDownStabilizationSeconds": 300,
    "canary.weights": [5, 25, 50, 100],  # canary 5 % -> 25 % -> 50 % -> 100 %
    "canary.pause": "10m",  # monitoring (10 minutes) at each step
    "canary.analysisInterval": "1m",
    "canary.failureLimit": 1,
    "canary.maxErrorRatio": 0.001,  # error rate < 0.1 %
    "canary.maxP95LatencySeconds": 0.5,  # API < 500 ms
    "rateLimits.period": "15m",  # windowMs: 15 * 60 * 1000
    "rateLimits.anonymous": 100,
    "rateLimits.authenticated": 1000,
    "rateLimits.premium": 5000,
    "rateLimits.tierHeader": "X-Shorts-Tier",
    "rateLimits.identityHeader": "X-Shorts-User",
    "caching.staticPathPrefix": "/static",
    "caching.staticMaxAgeSeconds": 2592000,  # 86400 * 30
    "caching.trendingMaxAgeSeconds": 300,  # /api/trending: 5 minutes
    "caching.searchMaxAgeSeconds": 3600,  # /api/search: 1 hour
    "compression.gzipLevel": 6,
    "compression.minBytes": 1024,
    "alerts.errorRatio": 0.001,
    "alerts.p95LatencySeconds": 0.5,
    "alerts.youtubeDailyQuotaUnits": 8000,  # daily 8,000 units
    "alerts.youtubeQuotaRatio": 0.8,  # alert above 80 %
    "alerts.certificateMinDays": 30,
    "alerts.dbMaxConnections": 100,  # active connections: N / 100
    "alerts.cacheMaxMemoryRatio": 0.9,  # not in the manual: our threshold for "cache memory exceeded"
    # not in the manual: the alert receiver's defaults (those of `remediation serve`), offered as fixes
    "receiver.port": 8080,
    "receiver.jobDeadline": "30m",
    "receiver.cooldown": "10m",
    "receiver.budget": "3/1h",
    "receiver.breakerFailures": 3,
    "receiver.maxBodyBytes": 1048576,
    "receiver.tokenSecret.name": "remediation-receiver-token",
    "receiver.tokenSecret.key": "token",
    "receiver.monitoring.namespace": "monitoring",
    "receiver.dns.namespace": "kube-system",
    "schedules.timeZone": "Asia/Seoul",
    "schedules.morningCheck": "0 9 * * *",  # 09:00 - 10:00
    "schedules.afternoonCheck": "0 14 * * *",
    "schedules.eveningCheck": "0 18 * * *",
    "schedules.weeklyDbMaintenance": "0 2 * * 1",  # Monday 02:00 - 04:00
    "services.api.port": 8080,
    "services.app.port": 8080,
    "services.admin.port": 8080,
    "services.api.healthPath": "/health",
    "services.app.healthPath": "/health",
    "services.admin.healthPath": "/health",
}
