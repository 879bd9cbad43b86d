"""Storm: 1,000 alerts over 20 targets, sent concurrently, start at most 20 Jobs and lose no record."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from remediation.receiver.server import ReceiverServer, TokenSource

from .builders import Harness, body, make_alert, make_payload

TOKEN = "storm-token"


def test_a_storm_starts_one_job_per_target_and_records_every_alert(harness: Harness, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN, encoding="utf-8")
    server = ReceiverServer(harness.receiver, TokenSource(token_file), workers=4, queue_size=2000)
    server.start()
    # 1,000 distinct alert episodes (each its own fingerprint), 50 per target, in 200 notifications of 5.
    alerts = [
        make_alert(fingerprint=f"{i:016x}", labels={"deployment": f"svc-{i % 20:02d}", "pod": f"pod-{i}"})
        for i in range(1000)
    ]
    batches = [make_payload(*alerts[i : i + 5]) for i in range(0, 1000, 5)]

    client = httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"})

    def send(payload: dict[str, object]) -> int:
        return client.post("/alerts", content=body(payload)).status_code

    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(send, batches))
        assert server.drain(timeout_s=60)
    finally:
        client.close()
        server.stop()
    assert statuses == [200] * 200
    assert len(harness.launcher.jobs) == 20
    started_targets = Counter(r.target.name for r in harness.launcher.requests)
    assert started_targets == Counter({f"svc-{n:02d}": 1 for n in range(20)})
    records = [json.loads(line) for line in harness.log_path.read_text().splitlines()]
    assert len(records) == 1000
    assert {r["fingerprint"] for r in records} == {f"{i:016x}" for i in range(1000)}
    assert Counter(r["outcome"] for r in records) == Counter({"started": 20, "suppressed": 980})
    assert harness.receiver.metrics.suppressed.value(reason="cooldown") == 980
