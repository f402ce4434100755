"""The backtest result: provenance, metrics, series and the order/trade records.

Records stay as float64 matrices (columns named in ``codes.py``) so building a result costs no
per-trade Python objects; ``trade_columns``/``order_columns`` decode them into typed columns on demand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from packages.domain.backtest import codes as c
from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.backtest.serialization import (
    JsonValue,
    canonical_json,
    decode_array,
    encode_array,
    to_jsonable,
)

FloatArray = npt.NDArray[np.float64]
Int64Array = npt.NDArray[np.int64]
MetricValue = float | int | str | None

_STORED_ARRAYS = (
    "index",
    "equity",
    "cash",
    "gross_exposure",
    "drawdown",
    "orders",
    "trades",
)


def iso_times(ns: npt.NDArray[np.int64]) -> list[str]:
    """UTC ISO-8601 strings (second precision) of nanosecond timestamps."""
    return [str(s) for s in np.datetime_as_string(ns.astype("datetime64[ns]"), unit="s", timezone="UTC")]


@dataclass(frozen=True)
class ChartSeries:
    """Chart-sized equity and drawdown series: bar positions (into ``index``) and values."""

    equity_bars: Int64Array
    equity: FloatArray
    drawdown_bars: Int64Array
    drawdown: FloatArray

    def to_json_dict(self, index: Int64Array) -> dict[str, JsonValue]:
        return {
            "equity": {
                "time": to_jsonable(index[self.equity_bars]),
                "bar": to_jsonable(self.equity_bars),
                "value": to_jsonable(self.equity),
            },
            "drawdown": {
                "time": to_jsonable(index[self.drawdown_bars]),
                "bar": to_jsonable(self.drawdown_bars),
                "value": to_jsonable(self.drawdown),
            },
        }


@dataclass(frozen=True, eq=False)
class BacktestResult:
    engine_version: str
    dsl_version: str
    dsl_hash: str
    data_hash: str
    order_hash: str
    assumptions: ExecutionAssumptions
    periods_per_year: float
    symbols: tuple[str, ...]
    side_names: tuple[str, ...]
    exit_rule_names: tuple[str, ...]
    index: Int64Array
    metrics: dict[str, MetricValue]
    equity: FloatArray
    cash: FloatArray
    gross_exposure: FloatArray
    drawdown: FloatArray
    orders: FloatArray  # (n_orders, N_ORDER_FIELDS)
    trades: FloatArray  # (n_trades, N_TRADE_FIELDS), by entry order
    chart: ChartSeries

    @property
    def n_trades(self) -> int:
        return int(self.trades.shape[0])

    @property
    def final_equity(self) -> float:
        return float(self.equity[-1]) if self.equity.shape[0] else self.assumptions.initial_cash

    def reason_name(self, code: int) -> str:
        if code >= 0:
            return self.exit_rule_names[code]
        if code == c.REASON_ENTRY:
            return "entry"
        return c.SPECIAL_REASON_NAMES[code]

    def reason_names(self, codes: npt.NDArray[np.float64]) -> npt.NDArray[np.str_]:
        lookup = {int(code): self.reason_name(int(code)) for code in np.unique(codes)}
        return np.array([lookup[int(code)] for code in codes], dtype=object).astype(str)

    def trade_columns(self) -> dict[str, npt.NDArray[Any]]:
        t = self.trades
        entry_bar = t[:, c.T_ENTRY_BAR].astype(np.int64)
        exit_bar = t[:, c.T_EXIT_BAR].astype(np.int64)
        symbols = np.array(self.symbols, dtype=object)
        return {
            "trade_id": t[:, c.T_ID].astype(np.int64),
            "symbol": symbols[t[:, c.T_SYMBOL].astype(np.int64)].astype(str),
            "direction": np.where(t[:, c.T_DIRECTION] > 0, "long", "short"),
            "quantity": t[:, c.T_QTY],
            "signal_bar": t[:, c.T_SIGNAL_BAR].astype(np.int64),
            "entry_bar": entry_bar,
            "entry_time": self.index[entry_bar],
            "entry_price": t[:, c.T_ENTRY_PRICE],
            "entry_at": np.array(c.AT_NAMES)[t[:, c.T_ENTRY_AT].astype(np.int64)],
            "exit_bar": exit_bar,
            "exit_time": self.index[exit_bar],
            "exit_price": t[:, c.T_EXIT_PRICE],
            "exit_at": np.array(c.AT_NAMES)[t[:, c.T_EXIT_AT].astype(np.int64)],
            "exit_signal_bar": t[:, c.T_EXIT_SIGNAL_BAR].astype(np.int64),
            "exit_reason": self.reason_names(t[:, c.T_REASON]),
            "entry_fee": t[:, c.T_ENTRY_FEE],
            "exit_fee": t[:, c.T_EXIT_FEE],
            "slippage": t[:, c.T_SLIPPAGE],
            "borrow": t[:, c.T_BORROW],
            "pnl": t[:, c.T_PNL],
            "trade_return": t[:, c.T_RETURN],
            "mae": t[:, c.T_MAE],
            "mfe": t[:, c.T_MFE],
            "is_open": t[:, c.T_IS_OPEN] == 1.0,
        }

    def order_columns(self) -> dict[str, npt.NDArray[Any]]:
        o = self.orders
        bar = o[:, c.O_BAR].astype(np.int64)
        symbols = np.array(self.symbols, dtype=object)
        return {
            "bar": bar,
            "time": self.index[bar],
            "symbol": symbols[o[:, c.O_SYMBOL].astype(np.int64)].astype(str),
            "side": np.where(o[:, c.O_SIDE] > 0, "buy", "sell"),
            "quantity": o[:, c.O_QTY],
            "price": o[:, c.O_PRICE],
            "raw_price": o[:, c.O_RAW_PRICE],
            "fee": o[:, c.O_FEE],
            "slippage": o[:, c.O_SLIPPAGE],
            "type": np.array(c.ORDER_TYPE_NAMES)[o[:, c.O_TYPE].astype(np.int64)],
            "reason": self.reason_names(o[:, c.O_REASON]),
            "signal_bar": o[:, c.O_SIGNAL_BAR].astype(np.int64),
            "trade_id": o[:, c.O_TRADE].astype(np.int64),
            "at": np.array(c.AT_NAMES)[o[:, c.O_AT].astype(np.int64)],
        }

    def provenance(self) -> dict[str, JsonValue]:
        return {
            "engine_version": self.engine_version,
            "dsl_version": self.dsl_version,
            "dsl_hash": self.dsl_hash,
            "data_hash": self.data_hash,
            "order_hash": self.order_hash,
        }

    def summary_dict(self) -> dict[str, JsonValue]:
        """What a job stores as its summary row: provenance, assumptions, metrics, chart series."""
        return {
            "provenance": self.provenance(),
            "assumptions": to_jsonable(self.assumptions.model_dump(mode="json")),
            "periods_per_year": self.periods_per_year,
            "symbols": list(self.symbols),
            "sides": list(self.side_names),
            "exit_rules": list(self.exit_rule_names),
            "metrics": to_jsonable(self.metrics),
            "chart": to_jsonable(self.chart.to_json_dict(self.index)),
        }

    def to_json_dict(self, *, include_records: bool = True) -> dict[str, JsonValue]:
        document = self.summary_dict()
        if include_records:
            trades = self.trade_columns()
            orders = self.order_columns()
            document["trades"] = to_jsonable(trades)
            document["orders"] = to_jsonable(orders)
        return document

    def to_json_bytes(self, *, include_records: bool = True) -> bytes:
        return canonical_json(self.to_json_dict(include_records=include_records))

    def to_storage(self) -> tuple[dict[str, JsonValue], dict[str, bytes]]:
        """Summary JSON plus zlib-compressed arrays; ``from_storage`` rebuilds an equal result."""
        blobs = {name: encode_array(getattr(self, name)) for name in _STORED_ARRAYS}
        chart = self.chart
        blobs["chart_equity_bars"] = encode_array(chart.equity_bars)
        blobs["chart_drawdown_bars"] = encode_array(chart.drawdown_bars)
        return self.summary_dict(), blobs

    @classmethod
    def from_storage(cls, summary: Mapping[str, Any], blobs: Mapping[str, bytes]) -> BacktestResult:
        arrays = {name: decode_array(blobs[name]) for name in _STORED_ARRAYS}
        equity_bars = decode_array(blobs["chart_equity_bars"])
        drawdown_bars = decode_array(blobs["chart_drawdown_bars"])
        provenance = summary["provenance"]
        metrics = {k: v for k, v in summary["metrics"].items()}
        # JSON keeps no NaN: missing values come back as None, exactly as they were exposed.
        return cls(
            engine_version=provenance["engine_version"],
            dsl_version=provenance["dsl_version"],
            dsl_hash=provenance["dsl_hash"],
            data_hash=provenance["data_hash"],
            order_hash=provenance["order_hash"],
            assumptions=ExecutionAssumptions.model_validate(summary["assumptions"]),
            periods_per_year=float(summary["periods_per_year"]),
            symbols=tuple(summary["symbols"]),
            side_names=tuple(summary["sides"]),
            exit_rule_names=tuple(summary["exit_rules"]),
            metrics=metrics,
            chart=ChartSeries(
                equity_bars=equity_bars,
                equity=arrays["equity"][equity_bars],
                drawdown_bars=drawdown_bars,
                drawdown=arrays["drawdown"][drawdown_bars],
            ),
            **arrays,
        )
