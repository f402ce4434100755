"""Celery worker entry: ``celery -A apps.worker.main worker -Q <queues> -n <kind>@%h``.

The CPU worker consumes ``backtest,stress`` (prefetch 1: one long job per process at a time); the
IO worker consumes ``market_data,paper_trading,notifications,maintenance``.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("MINSY_SERVICE", "worker_cpu")

from packages.infra.observability.logging import configure_logging
from packages.infra.queue.celery_app import celery_app
from packages.shared_settings import get_settings

_settings = get_settings()

# numba keeps compiled kernels beside their sources (``__pycache__``): one cache for every process of
# a checkout (tests, benchmarks, the stack). Where the code is read-only (an image run as an
# unprivileged user, a read-only mount) numba falls back to the home folder, and when that is not
# writable either, importing a kernel module fails. The data folder is writable by definition and kept
# across restarts, so the warm-up's compilations survive them. An explicit NUMBA_CACHE_DIR wins. Set
# before the task modules (which import the kernels) are loaded.
_SOURCES = Path(__file__).resolve().parents[2] / "packages"
if "NUMBA_CACHE_DIR" not in os.environ and not os.access(_SOURCES, os.W_OK):
    os.environ["NUMBA_CACHE_DIR"] = str(_settings.runtime.data_dir / "numba-cache")

configure_logging(
    _settings.runtime.log_level, json_output=_settings.runtime.log_json, service=_settings.runtime.service
)
celery_app.conf.worker_prefetch_multiplier = 1

# Every feature's task module; each registers its tasks on import.
TASK_MODULES = (
    "packages.core.system.tasks",
    "packages.core.jobs.tasks",
    "packages.core.backtests.tasks",
    "packages.core.market_data.tasks",
    "packages.core.stress.tasks",
)
celery_app.conf.include = TASK_MODULES

__all__ = ["celery_app"]
