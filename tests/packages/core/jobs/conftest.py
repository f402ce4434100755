"""Job-kit tests run the real workers with short job timings (set before they are spawned): a
heartbeat every 0.5 s and a running job or part counted lost after 6 s without one."""

from __future__ import annotations

import os

os.environ.setdefault("JOB_HEARTBEAT_S", "0.5")
os.environ.setdefault("JOB_STALE_AFTER_S", "6")
