"""Backtest job tests: real CPU and IO workers over the store the IO worker cold-starts.

Worker subprocesses start after collection, so the job timings set here reach them: a heartbeat
every 0.5 s and a running job counted lost after 6 s without one (instead of 2 s and 30 s), so
cancellation and the recovery of a killed job show within seconds.
"""

from __future__ import annotations

import os

os.environ.setdefault("JOB_HEARTBEAT_S", "0.5")
os.environ.setdefault("JOB_STALE_AFTER_S", "6")
