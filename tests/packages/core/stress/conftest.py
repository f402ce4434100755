"""Stress tests run on the real CPU workers with small parts (set before they are spawned), so a
test-sized job is cut into many parts that spread over every worker process."""

from __future__ import annotations

import os

os.environ.setdefault("STRESS_TRIALS_PER_PART", "50")
os.environ.setdefault("STRESS_POINTS_PER_PART", "5")
