"""Celery beat entry: ``celery -A apps.beat.main beat -s var/beat/schedule``.

Runs as its own service (exactly one instance); its scheduler also writes a heartbeat to Redis.
"""

from __future__ import annotations

import os

os.environ.setdefault("MINSY_SERVICE", "beat")

from packages.infra.observability.logging import configure_logging
from packages.infra.queue.celery_app import celery_app
from packages.shared_settings import get_settings

_settings = get_settings()
configure_logging(_settings.runtime.log_level, json_output=_settings.runtime.log_json, service="beat")
celery_app.conf.beat_scheduler = "packages.infra.queue.beat:HeartbeatScheduler"

__all__ = ["celery_app"]
