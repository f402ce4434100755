"""Reach into the real Celery workers the tests start: their pool processes, and pausing them."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator


def pool_pids(celery_workers: dict[str, str], kind: str) -> list[int]:
    """The pool processes of the ``kind`` ("cpu" or "io") worker, as it reports them."""
    from packages.infra.queue.celery_app import celery_app

    node = celery_workers[kind]
    stats = celery_app.control.inspect([node], timeout=5).stats()
    assert stats and node in stats, stats
    return [int(pid) for pid in stats[node]["pool"]["processes"]]


@contextlib.contextmanager
def frozen_pool(celery_workers: dict[str, str], kind: str) -> Iterator[list[int]]:
    """Stop a worker's pool processes (SIGSTOP) so new jobs stay queued; resume them after."""
    pids = pool_pids(celery_workers, kind)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield pids
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
