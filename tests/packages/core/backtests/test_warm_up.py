"""The CPU worker's warm-up: a freshly started worker answers its first backtest without compiling.

A fresh interpreter plays the CPU worker on a fresh clone and a fresh stack: numba's cache folder is
empty and the data folder holds no market data yet. Its parent runs the warm-up (as ``worker_init``
does), then a forked child (a pool process) runs real jobs on the session's store, which the IO
worker filled from the packaged real price files.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from tests.packages.core.backtests.helpers import write_synthetic_minutes
from tests.support.forking import forked_child_value

_WORKER_PARENT = """
from packages.core.backtests.tasks import warm_up
from packages.shared_settings import get_settings
from tests.packages.core.backtests.fresh_worker import first_jobs

warm_up_seconds = warm_up(get_settings())
"""


def test_a_fresh_worker_runs_its_first_backtests_without_compiling(
    settings: Any, market_data_ready: dict[str, Any], tmp_path: Path
) -> None:
    user_id = str(uuid.uuid4())
    minute_symbol = "WARMUP"
    # SYNTHETIC one-minute crypto bars in the user's namespace: no packaged data is crypto or intraday
    # below an hour, and those take the store's fixed-step resampling.
    write_synthetic_minutes(settings, user_id, minute_symbol, minutes=3 * 24 * 60)
    fresh_stack, empty_cache = tmp_path / "fresh-stack", tmp_path / "numba-cache"
    empty_cache.mkdir()
    report = forked_child_value(
        _WORKER_PARENT,
        "first_jobs(sys.argv[1], sys.argv[2], sys.argv[3], warm_up_seconds)",
        str(settings.runtime.data_dir),
        user_id,
        minute_symbol,
        env={"MINSY_DATA_DIR": str(fresh_stack), "NUMBA_CACHE_DIR": str(empty_cache)},
        timeout_s=600,
    )
    # The warm-up ran although the fresh stack had no market data, and filled the empty cache folder.
    assert isinstance(report["warm_up_seconds"], float), report
    assert any(empty_cache.rglob("*.nbi")), "numba wrote no cache index"
    # No job of any kind needed a kernel signature the warm-up had not compiled ...
    assert report["added_specialisations"] == {}, report["added_specialisations"]
    assert report["jobs"] > 40 and report["stress_parts"] > 10  # stress parts run on the same pool
    # ... so the first backtest takes milliseconds, not the ~20 s numba needs to compile the engine.
    assert report["first_job_seconds"] < 2.0, report
