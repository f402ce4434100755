"""Benchmark runner: ``python -m bench.run [--repeats N] [--only WORKLOAD ...]``.

Every module in ``bench/workloads`` exposes ``run(repeats: int = 5) -> list[dict]``; each row has
``workload``, ``engine``, ``rows``, ``median_s``, ``rows_per_s``, ``peak_mb`` and optional ``notes``.
Our engine is ``minsy``; the table shows, for every peer engine, how many times slower its median
is than ours on the same workload. All rows go to ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import pkgutil
import platform
import sys
from pathlib import Path
from typing import Any

import bench.workloads
from packages.infra.allocator import with_allocator_tuning

OUR_ENGINE = "minsy"
RESULTS_PATH = Path(__file__).resolve().parent / "results" / "latest.json"


def discover() -> list[str]:
    return sorted(
        module.name
        for module in pkgutil.iter_modules(bench.workloads.__path__)
        if not module.name.startswith("_")
    )


def format_table(rows: list[dict[str, Any]]) -> str:
    ours = {row["workload"]: row["median_s"] for row in rows if row["engine"] == OUR_ENGINE}
    header = ("workload", "engine", "rows", "median_s", "rows/s", "peak_mb", f"x slower than {OUR_ENGINE}")
    lines = []
    for row in rows:
        baseline = ours.get(row["workload"])
        ratio = "" if row["engine"] == OUR_ENGINE or not baseline else f"{row['median_s'] / baseline:.1f}x"
        lines.append(
            (
                row["workload"],
                row["engine"],
                f"{row['rows']:,}",
                f"{row['median_s']:.4f}",
                f"{row['rows_per_s']:,.0f}",
                f"{row['peak_mb']:.0f}",
                ratio,
            )
        )
    widths = [max(len(str(cells[i])) for cells in [header, *lines]) for i in range(len(header))]
    rendered = [
        " | ".join(str(cell).ljust(width) for cell, width in zip(cells, widths, strict=True))
        for cells in [header, *lines]
    ]
    rendered.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(rendered)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="workload module names (default: all)")
    args = parser.parse_args(argv)
    names = discover()
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            parser.error(f"unknown workloads {unknown}; available: {names}")
        names = [name for name in names if name in args.only]
    # Every engine subprocess (ours and the peers) inherits the same allocator settings.
    os.environ.update(with_allocator_tuning(os.environ))
    rows: list[dict[str, Any]] = []
    for name in names:
        module = importlib.import_module(f"bench.workloads.{name}")
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.extend(module.run(repeats=args.repeats))
    print(format_table(rows))
    RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "repeats": args.repeats,
        "allocator": os.environ.get("GLIBC_TUNABLES", ""),
        "rows": rows,
    }
    RESULTS_PATH.write_text(json.dumps(payload, indent=1))
    print(f"\nwrote {RESULTS_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
