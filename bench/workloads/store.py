"""Workload ``store_read_resample_1m``: one symbol's 1,000,000 one-minute bars -> 1h bars.

Setup (not timed) writes SYNTHETIC bars (a seeded random walk, labelled ``SYNTH-BTCUSD`` and
``provenance.kind = "synthetic"``) to a temporary Parquet store and to a CSV file. Then, each in its
own subprocess so peak memory is per engine:

- ``minsy``: ``ParquetBarStore.read(..., "1h", use_cache=False)``: read all partitions and
  resample along crypto (UTC) sessions; the resample cache is off so every repeat does the work.
- ``pandas``: ``read_csv`` with timestamp parsing, then ``resample("1h").agg(first/max/min/last/sum)``.

One untimed warm-up per engine puts the files in the page cache for both. Each subprocess also
returns the row count and close-price sum of its output; they must agree.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

WORKLOAD = "store_read_resample_1m"
ROWS = 1_000_000
SYMBOL = "SYNTH-BTCUSD"


def _synthetic_bars(rows: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20240101)
    start_ns = np.datetime64("2022-01-01T00:00", "ns").astype(np.int64)
    ts = start_ns + np.arange(rows, dtype=np.int64) * 60_000_000_000
    close = 30_000 * np.exp(np.cumsum(rng.normal(0.0, 8e-4, rows)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    spread = np.abs(rng.normal(0.0, 4e-4, rows)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread
    volume = rng.gamma(2.0, 5.0, rows)
    return {"ts": ts, "open": open_, "high": high, "low": low, "close": close, "volume": volume}


def setup(root: Path, rows: int) -> None:
    import pandas as pd

    from packages.infra.market_data.store import ParquetBarStore

    columns = _synthetic_bars(rows)
    store = ParquetBarStore(root / "store")
    store.write(
        "crypto", SYMBOL, "1m", columns, metadata={"provenance": {"kind": "synthetic", "generator": __name__}}
    )
    frame = pd.DataFrame({name: values for name, values in columns.items() if name != "ts"})
    frame.insert(0, "ts", pd.to_datetime(columns["ts"], utc=True))
    frame.to_csv(root / "bars.csv", index=False)


def _run_minsy(root: Path) -> tuple[int, float]:
    from packages.infra.market_data.store import ParquetBarStore

    bars = ParquetBarStore(root / "store").read("crypto", SYMBOL, "1h", use_cache=False)
    return len(bars), float(bars.close.sum())


def _run_pandas(root: Path) -> tuple[int, float]:
    import pandas as pd

    frame = pd.read_csv(root / "bars.csv", index_col="ts", parse_dates=["ts"])
    hourly = (
        frame.resample("1h")
        .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
        .dropna(subset=["open"])
    )
    return len(hourly), float(hourly["close"].sum())


def _child(engine: str, root: Path, repeats: int) -> dict[str, Any]:
    runner = _run_minsy if engine == "minsy" else _run_pandas
    runner(root)  # warm-up: imports and page cache, not timed
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        rows_out, close_sum = runner(root)
        timings.append(time.perf_counter() - started)
    return {"timings": timings, "rows_out": rows_out, "close_sum": close_sum, "peak_mb": _peak_rss_mb()}


def _peak_rss_mb() -> float:
    # VmHWM belongs to this process image; ru_maxrss would carry over the parent's peak across exec.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(repeats: int = 5) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="minsy-bench-store-") as directory:
        root = Path(directory)
        setup(root, ROWS)
        measured = {}
        for engine in ("minsy", "pandas"):
            # Ours takes milliseconds: more repeats steady its median on a shared machine.
            engine_repeats = repeats * 5 if engine == "minsy" else repeats
            completed = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.workloads.store",
                    "--engine",
                    engine,
                    "--root",
                    str(root),
                    "--repeats",
                    str(engine_repeats),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            measured[engine] = json.loads(completed.stdout)
    same_output = measured["minsy"]["rows_out"] == measured["pandas"]["rows_out"] and np.isclose(
        measured["minsy"]["close_sum"], measured["pandas"]["close_sum"], rtol=1e-12
    )
    rows = []
    for engine, result in measured.items():
        median = statistics.median(result["timings"])
        notes = (
            "Parquet store read + session resample, cache off"
            if engine == "minsy"
            else "read_csv(parse_dates) + resample().agg()"
        )
        rows.append(
            {
                "workload": WORKLOAD,
                "engine": engine,
                "rows": ROWS,
                "median_s": median,
                "rows_per_s": ROWS / median,
                "peak_mb": result["peak_mb"],
                "notes": f"{notes}; {len(result['timings'])} timed runs; synthetic data; {result['rows_out']} hourly bars; outputs match: {bool(same_output)}",
            }
        )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", choices=("minsy", "pandas"), required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    print(json.dumps(_child(arguments.engine, arguments.root, arguments.repeats)))
