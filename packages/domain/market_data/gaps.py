"""Gap detection: which expected bars of a requested range are missing from a dataset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from packages.domain.market_data.bars import Int64Array, Timeframe
from packages.domain.market_data.sessions import SessionCalendar, expected_timestamps
from packages.domain.market_data.timeconv import iso


@dataclass(frozen=True, slots=True)
class MissingRange:
    """Half-open ``[start_ns, end_ns)`` span whose ``bars`` expected bars are all absent."""

    start_ns: int
    end_ns: int
    bars: int

    def to_dict(self) -> dict[str, object]:
        return {"start": iso(self.start_ns), "end": iso(self.end_ns), "missing_bars": self.bars}


def missing_timestamps(
    calendar: SessionCalendar, timeframe: Timeframe, existing: Int64Array, start_ns: int, end_ns: int
) -> Int64Array:
    expected = expected_timestamps(calendar, timeframe, start_ns, end_ns)
    return expected[~np.isin(expected, existing)]


def detect_missing_ranges(
    calendar: SessionCalendar, timeframe: Timeframe, existing: Int64Array, start_ns: int, end_ns: int
) -> list[MissingRange]:
    """Group missing expected bars into ranges of consecutive expected bars.

    Two missing bars belong to one range when no present bar lies between them in the expected
    sequence, so a missing overnight or weekend stretch stays one range. Each range ends one
    timeframe after its last missing bar (clipped to ``end_ns``).
    """
    expected = expected_timestamps(calendar, timeframe, start_ns, end_ns)
    if expected.shape[0] == 0:
        return []
    missing = ~np.isin(expected, existing)
    if not missing.any():
        return []
    edges = np.diff(np.concatenate(([0], missing.astype(np.int8), [0])))
    run_starts = np.flatnonzero(edges == 1)
    run_ends = np.flatnonzero(edges == -1) - 1
    return [
        MissingRange(
            start_ns=int(expected[first]),
            end_ns=min(int(expected[last]) + timeframe.nanos, end_ns),
            bars=int(last - first + 1),
        )
        for first, last in zip(run_starts, run_ends, strict=True)
    ]
