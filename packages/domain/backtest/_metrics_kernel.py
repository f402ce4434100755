"""Equity-curve metric kernels (defined in ``_kernel``, where all numba code lives so that numba's
per-file cache invalidation covers every kernel together). Re-exported here for callers that only
need the metrics.
"""

from __future__ import annotations

from packages.domain.backtest._kernel import (
    EQUITY_METRICS,
    N_EQUITY_METRICS,
    benchmark_at,
    equity_metrics,
    minmax_downsample,
)

__all__ = ["EQUITY_METRICS", "N_EQUITY_METRICS", "benchmark_at", "equity_metrics", "minmax_downsample"]
