"""glibc allocator settings for processes that run the backtest engine.

By default glibc serves large blocks (a million bars of float64 is 8 MB) with fresh ``mmap`` pages and
gives them back on free, so every run faults in and zeroes its arrays again; on a busy host that
first touch costs more than the simulation that writes them. Raising the mmap threshold to its
maximum (32 MiB) and the trim threshold to 512 MiB keeps freed blocks in the heap for the next run.
The environment variable must be set before the process starts: the launcher sets it for the CPU
worker, compose for its container and ``make bench`` for every engine it runs (peers included).
"""

from __future__ import annotations

from collections.abc import Mapping

ALLOCATOR_ENV_VAR = "GLIBC_TUNABLES"
ALLOCATOR_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=536870912"


def with_allocator_tuning(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` plus the allocator settings, unless the caller already chose its own tunables."""
    tuned = dict(env)
    tuned.setdefault(ALLOCATOR_ENV_VAR, ALLOCATOR_TUNABLES)
    return tuned
