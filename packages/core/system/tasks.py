"""Tasks every deployment has: a probe per queue that proves a round trip through it works."""

from __future__ import annotations

import os
import socket
from typing import Any

from packages.infra.queue.celery_app import celery_app
from packages.infra.queue.queues import ALL_QUEUES


def _register_probe(queue: str) -> None:
    def probe(payload: Any = None) -> dict[str, Any]:
        return {
            "queue": queue,
            "payload": payload,
            "worker_host": socket.gethostname(),
            "worker_pid": os.getpid(),
        }

    probe.__name__ = probe.__qualname__ = f"probe_{queue}"
    # Named "<queue>.probe": routing by name prefix sends each probe to its own queue.
    celery_app.task(name=f"{queue}.probe", acks_late=True)(probe)


for _queue in ALL_QUEUES:
    _register_probe(_queue)
