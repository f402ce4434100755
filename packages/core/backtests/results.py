"""Reading a stored result back: decode once, keep a few recent ones, render rows for the API.

Decoded results are cached per ``(job id, result hash)``: a stored result never changes, so the
cache is never stale, and the owner check happens before a lookup (the caller fetched the row).
"""

from __future__ import annotations

import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from packages.core.backtests.schemas import OrderOut, SeriesOut, TradeOut
from packages.domain.backtest.artifacts import unpack_artifacts
from packages.domain.backtest.result import BacktestResult, iso_times

_CACHE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class StoredResult:
    result: BacktestResult
    blobs: Mapping[str, bytes]
    summary: Mapping[str, Any]

    @property
    def size(self) -> int:
        arrays = sum(getattr(self.result, name).nbytes for name in ("index", "equity", "cash", "drawdown"))
        return (
            arrays
            + self.result.trades.nbytes
            + self.result.orders.nbytes
            + sum(map(len, self.blobs.values()))
        )


def decode_result(summary: Mapping[str, Any], artifacts: bytes) -> StoredResult:
    blobs = unpack_artifacts(artifacts)
    return StoredResult(BacktestResult.from_storage(summary, blobs), blobs, summary)


class ResultCache:
    """Recently read results, bounded by their in-memory size."""

    def __init__(self, max_bytes: int = _CACHE_BYTES) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[tuple[uuid.UUID, str], StoredResult] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[uuid.UUID, str]) -> StoredResult | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: tuple[uuid.UUID, str], stored: StoredResult) -> None:
        if stored.size > self._max_bytes:
            return
        with self._lock:
            self._entries[key] = stored
            total = sum(entry.size for entry in self._entries.values())
            while total > self._max_bytes:
                _, evicted = self._entries.popitem(last=False)
                total -= evicted.size


RESULTS = ResultCache()


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def series(
    index: npt.NDArray[np.int64], bars: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
) -> SeriesOut:
    return SeriesOut(
        time=iso_times(index[bars]), bar=bars.tolist(), value=[_number(v) for v in values.tolist()]
    )


def _sliced(columns: Mapping[str, npt.NDArray[Any]], first: int, stop: int) -> dict[str, list[Any]]:
    return {name: values[first:stop].tolist() for name, values in columns.items()}


def trade_rows(result: BacktestResult, first: int, stop: int) -> list[TradeOut]:
    c = _sliced(result.trade_columns(), first, stop)
    index = result.index
    signal_times = iso_times(index[np.maximum(np.asarray(c["signal_bar"], dtype=np.int64), 0)])
    exit_signal_times = iso_times(index[np.maximum(np.asarray(c["exit_signal_bar"], dtype=np.int64), 0)])
    entry_times = iso_times(np.asarray(c["entry_time"], dtype=np.int64))
    exit_times = iso_times(np.asarray(c["exit_time"], dtype=np.int64))
    return [
        TradeOut(
            number=first + k,
            trade_id=c["trade_id"][k],
            symbol=c["symbol"][k],
            direction=c["direction"][k],
            quantity=c["quantity"][k],
            signal_time=signal_times[k],
            entry_time=entry_times[k],
            entry_price=c["entry_price"][k],
            exit_signal_time=exit_signal_times[k],
            exit_time=exit_times[k],
            exit_price=c["exit_price"][k],
            exit_reason=c["exit_reason"][k],
            pnl=_number(c["pnl"][k]),
            trade_return=_number(c["trade_return"][k]),
            fees=c["entry_fee"][k] + c["exit_fee"][k],
            slippage=c["slippage"][k],
            borrow=c["borrow"][k],
            holding_bars=c["exit_bar"][k] - c["entry_bar"][k],
            mae=_number(c["mae"][k]),
            mfe=_number(c["mfe"][k]),
            is_open=c["is_open"][k],
        )
        for k in range(stop - first)
    ]


def order_rows(result: BacktestResult, first: int, stop: int) -> list[OrderOut]:
    c = _sliced(result.order_columns(), first, stop)
    times = iso_times(np.asarray(c["time"], dtype=np.int64))
    return [
        OrderOut(
            number=first + k,
            time=times[k],
            symbol=c["symbol"][k],
            side=c["side"][k],
            type=c["type"][k],
            quantity=c["quantity"][k],
            price=c["price"][k],
            raw_price=c["raw_price"][k],
            fee=c["fee"][k],
            slippage=c["slippage"][k],
            reason=c["reason"][k],
            trade_id=c["trade_id"][k],
            filled_at=c["at"][k],
        )
        for k in range(stop - first)
    ]


def readable(value: Any) -> Any:
    """View data with nanosecond ``time`` lists as ISO-8601 strings and non-finite floats as None."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if key == "time" and isinstance(item, list) and item and isinstance(item[0], int):
                out[key] = iso_times(np.asarray(item, dtype=np.int64))
            else:
                out[key] = readable(item)
        return out
    if isinstance(value, list | tuple):
        return [readable(item) for item in value]
    if isinstance(value, float | np.floating):
        return _number(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value
