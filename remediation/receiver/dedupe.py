"""Per-replica memory of alert episodes already decided (fingerprint + startsAt).

Alertmanager resends every firing alert of a group with each notification, and in HA mode every
replica sends it. This cheap first filter answers most repeats without touching the guard store;
the store's own memory and the deterministic Job name catch what crosses replicas.
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class SeenAlerts:
    def __init__(self, capacity: int = 50_000) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def first_time(self, dedupe_id: str) -> bool:
        """True exactly once per id (until it ages out of the bounded memory)."""
        with self._lock:
            if dedupe_id in self._seen:
                self._seen.move_to_end(dedupe_id)
                return False
            self._seen[dedupe_id] = None
            if len(self._seen) > self._capacity:
                self._seen.popitem(last=False)
            return True

    def forget(self, dedupe_id: str) -> None:
        """Used when a launch failed: the next resend of the alert must be tried again."""
        with self._lock:
            self._seen.pop(dedupe_id, None)
