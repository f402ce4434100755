"""Celery beat entry: ``celery -A apps.beat.main beat -s var/beat/schedule``.

Runs as its own service (exactly one instance); its scheduler also writes a heartbeat to Redis,
and a thread beside it relays the transactional outbox (messages whose fast-path publish failed).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
from datetime import timedelta
from typing import Any

os.environ.setdefault("MINSY_SERVICE", "beat")

from celery import signals

from packages.core.resources import Resources
from packages.infra.observability.logging import configure_logging
from packages.infra.queue.celery_app import celery_app
from packages.shared_settings import get_settings

_settings = get_settings()
configure_logging(_settings.runtime.log_level, json_output=_settings.runtime.log_json, service="beat")
celery_app.conf.beat_scheduler = "packages.infra.queue.beat:HeartbeatScheduler"

_stop_relay = threading.Event()
atexit.register(_stop_relay.set)


async def _relay_outbox() -> None:
    resources = Resources.open(_settings)
    try:
        celery = _settings.celery
        await resources.outbox_relay.run_forever(
            _stop_relay,
            interval_s=celery.outbox_relay_interval_s,
            keep=timedelta(hours=celery.outbox_keep_published_h),
        )
    finally:
        await resources.close()


def _relay_thread() -> None:
    asyncio.run(_relay_outbox())


@signals.beat_init.connect
def _start_outbox_relay(sender: Any = None, **_: Any) -> None:
    threading.Thread(target=_relay_thread, name="outbox-relay", daemon=True).start()


__all__ = ["celery_app"]
