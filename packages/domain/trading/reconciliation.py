"""Backtest against paper: the trades of both over a deployment's period, matched, each difference explained.

Inputs: the backtest of the deployment's period on the same bars (``backtest_trades(result)``, from
``BacktestResult.trade_columns``), the paper trades (``paper_trades(round_trips(fills))``) and what
happened to the deployment (``TradingEvent``: risk refusals, manual actions, kill switches, as infra
records them).

**Matching.** A paper trade matches a backtest trade of the same symbol and direction decided at
the same bar (signal time), else entered at the same bar, else overlapping it in time (a timing
difference). Unmatched trades stand alone.

**Comparing.** Entry and exit bars, prices (after costs), quantities, fees and the exit reason, with
``relative_tolerance`` on numbers. A backtest trade still open at the end (``close_at_end`` off) and
a paper trade still open compare on their entries only; one the backtest closed at the end
(``end_of_data``) against a paper trade still open is ``still_open``, not a difference.

**Causes**, the first that applies:

* ``kill_switch``: the paper trade was flattened by a kill switch, or the backtest trade's entry was
  refused while a kill switch was on;
* ``manual_action``: the paper trade was opened, closed or flattened by a user;
* ``blocked_by_risk``: the backtest trade's entry was refused by the risk gate (the rule is named);
* ``partial_fill``: the paper trade filled in parts (volume limits) and its quantity differs;
* ``timing``: the trade was entered or left at other bars;
* ``fill_price``: only prices and fees differ (another quote, spread or cost model);
* ``knock_on``: the difference follows an earlier explained one: on the same symbol for a trade
  missing on one side or shifted in time (the paper position was elsewhere), on any symbol for a
  size or fee difference (sizing reads equity, which the earlier difference changed);
* ``unexplained`` otherwise. A deployment that followed its strategy has none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from packages.domain.backtest.result import BacktestResult
from packages.domain.strategy.plan import Side
from packages.domain.trading.round_trips import RoundTrip

Cause = Literal[
    "none",
    "kill_switch",
    "manual_action",
    "blocked_by_risk",
    "partial_fill",
    "still_open",
    "timing",
    "fill_price",
    "knock_on",
    "unexplained",
]
EventKind = Literal["risk_refusal", "manual_action", "kill_switch"]
_EXPLAINED: frozenset[Cause] = frozenset(
    {"kill_switch", "manual_action", "blocked_by_risk", "partial_fill", "timing", "fill_price", "knock_on"}
)


@dataclass(frozen=True)
class TradingEvent:
    time: int  # the bar (open time, ns) of the cycle it happened in
    kind: EventKind
    symbol: str | None  # None: the whole deployment
    detail: str
    client_order_id: str | None = None


@dataclass(frozen=True)
class TradeRecord:
    """A trade of either side, in the terms both share."""

    symbol: str
    direction: Side
    quantity: float
    signal_time: int | None
    entry_time: int
    entry_price: float
    entry_fee: float
    exit_time: int | None
    exit_price: float | None
    exit_fee: float
    exit_reason: str | None
    is_open: bool
    partial: bool = False
    entry_purpose: str = "entry"
    exit_purpose: str | None = None


def backtest_trades(result: BacktestResult) -> list[TradeRecord]:
    """The backtest's trades (open ones without exit fields), by entry."""
    columns = result.trade_columns()
    index = result.index
    records = []
    for k in range(result.n_trades):
        is_open = bool(columns["is_open"][k])
        records.append(
            TradeRecord(
                symbol=str(columns["symbol"][k]),
                direction="long" if columns["direction"][k] == "long" else "short",
                quantity=float(columns["quantity"][k]),
                signal_time=int(index[int(columns["signal_bar"][k])]),
                entry_time=int(columns["entry_time"][k]),
                entry_price=float(columns["entry_price"][k]),
                entry_fee=float(columns["entry_fee"][k]),
                exit_time=None if is_open else int(columns["exit_time"][k]),
                exit_price=None if is_open else float(columns["exit_price"][k]),
                exit_fee=0.0 if is_open else float(columns["exit_fee"][k]),
                exit_reason=None if is_open else str(columns["exit_reason"][k]),
                is_open=is_open,
            )
        )
    return records


def paper_trades(trips: Sequence[RoundTrip]) -> list[TradeRecord]:
    return [
        TradeRecord(
            symbol=trip.symbol,
            direction=trip.direction,
            quantity=trip.quantity,
            signal_time=trip.signal_time,
            entry_time=trip.entry_time,
            entry_price=trip.entry_price,
            entry_fee=trip.entry_fee,
            exit_time=None if trip.is_open else trip.exit_time,
            exit_price=None if trip.is_open else trip.exit_price,
            exit_fee=0.0 if trip.is_open else trip.exit_fee,
            exit_reason=None if trip.is_open else trip.exit_reason,
            is_open=trip.is_open,
            partial=trip.partial,
            entry_purpose=trip.entry_purpose,
            exit_purpose=trip.exit_purpose,
        )
        for trip in trips
    ]


@dataclass(frozen=True)
class Difference:
    field: str
    backtest: float | int | str | None
    paper: float | int | str | None


@dataclass(frozen=True)
class TradeComparison:
    backtest: TradeRecord | None
    paper: TradeRecord | None
    differences: tuple[Difference, ...]
    cause: Cause
    explanation: str

    @property
    def symbol(self) -> str:
        trade = self.backtest or self.paper
        assert trade is not None
        return trade.symbol

    @property
    def time(self) -> int:
        trade = self.backtest or self.paper
        assert trade is not None
        return trade.entry_time


@dataclass(frozen=True)
class Reconciliation:
    comparisons: tuple[TradeComparison, ...]

    @property
    def unexplained(self) -> tuple[TradeComparison, ...]:
        return tuple(c for c in self.comparisons if c.cause == "unexplained")

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for comparison in self.comparisons:
            counts[comparison.cause] = counts.get(comparison.cause, 0) + 1
        return counts


def _close(a: float | None, b: float | None, tolerance: float) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)


def _differences(bt: TradeRecord, paper: TradeRecord, tolerance: float) -> tuple[Difference, ...]:
    found: list[Difference] = []

    def compare(name: str, a: float | int | str | None, b: float | int | str | None, numeric: bool) -> None:
        same = _close(a, b, tolerance) if numeric else a == b  # type: ignore[arg-type]
        if not same:
            found.append(Difference(name, a, b))

    compare("entry_time", bt.entry_time, paper.entry_time, False)
    compare("quantity", bt.quantity, paper.quantity, True)
    compare("entry_price", bt.entry_price, paper.entry_price, True)
    compare("entry_fee", bt.entry_fee, paper.entry_fee, True)
    if bt.is_open or paper.is_open:
        if bt.is_open != paper.is_open and not (paper.is_open and bt.exit_reason == "end_of_data"):
            found.append(Difference("exit_time", bt.exit_time, paper.exit_time))
        return tuple(found)
    compare("exit_time", bt.exit_time, paper.exit_time, False)
    compare("exit_price", bt.exit_price, paper.exit_price, True)
    compare("exit_fee", bt.exit_fee, paper.exit_fee, True)
    compare("exit_reason", bt.exit_reason, paper.exit_reason, False)
    return tuple(found)


def _pair(
    backtest: Sequence[TradeRecord], paper: Sequence[TradeRecord]
) -> list[tuple[int | None, int | None]]:
    free = set(range(len(paper)))
    pairs: dict[int, int] = {}

    def take(bt_index: int, accept: object) -> None:
        for p in sorted(free, key=lambda k: paper[k].entry_time):
            if accept(backtest[bt_index], paper[p]):  # type: ignore[operator]
                pairs[bt_index] = p
                free.discard(p)
                return

    def same_trade(a: TradeRecord, b: TradeRecord) -> bool:
        return a.symbol == b.symbol and a.direction == b.direction

    rules = (
        lambda a, b: same_trade(a, b) and a.signal_time is not None and a.signal_time == b.signal_time,
        lambda a, b: same_trade(a, b) and a.entry_time == b.entry_time,
        lambda a, b: (
            same_trade(a, b)
            and b.entry_time <= (a.exit_time if a.exit_time is not None else math.inf)
            and a.entry_time <= (b.exit_time if b.exit_time is not None else math.inf)
        ),
    )
    for rule in rules:
        for k in range(len(backtest)):
            if k not in pairs:
                take(k, rule)
    matched: list[tuple[int | None, int | None]] = [(k, pairs.get(k)) for k in range(len(backtest))]
    matched.extend((None, p) for p in sorted(free))
    return matched


def reconcile(
    backtest: Sequence[TradeRecord],
    paper: Sequence[TradeRecord],
    events: Sequence[TradingEvent] = (),
    *,
    relative_tolerance: float = 1e-9,
) -> Reconciliation:
    """Match ``paper`` to ``backtest`` trade by trade and give every difference its cause."""
    refusals = [e for e in events if e.kind == "risk_refusal"]
    switch_times = {e.time for e in events if e.kind == "kill_switch"}
    manual = [e for e in events if e.kind == "manual_action"]
    pairs = _pair(backtest, paper)
    pairs.sort(
        key=lambda pair: (backtest[pair[0]] if pair[0] is not None else paper[pair[1]]).entry_time  # type: ignore[index]
    )
    comparisons: list[TradeComparison] = []
    explained_symbols: set[str] = set()
    any_explained = False
    for bt_index, paper_index in pairs:
        bt = backtest[bt_index] if bt_index is not None else None
        pt = paper[paper_index] if paper_index is not None else None
        symbol = (bt or pt).symbol  # type: ignore[union-attr]
        if bt is not None and pt is not None:
            differences = _differences(bt, pt, relative_tolerance)
            cause, why = _pair_cause(bt, pt, differences, symbol in explained_symbols, any_explained, manual)
        elif bt is not None:
            differences = (Difference("trade", "backtest only", None),)
            cause, why = _missing_cause(bt, refusals, switch_times, symbol in explained_symbols)
        else:
            assert pt is not None
            differences = (Difference("trade", None, "paper only"),)
            if pt.entry_purpose == "manual":
                cause, why = "manual_action", "A user opened this trade; the strategy did not."
            elif symbol in explained_symbols:
                cause, why = "knock_on", f"Follows an earlier explained difference on {symbol}."
            else:
                cause, why = (
                    "unexplained",
                    "Paper traded where the backtest did not, and nothing recorded says why.",
                )
        if cause in _EXPLAINED:
            explained_symbols.add(symbol)
            any_explained = True
        comparisons.append(TradeComparison(bt, pt, differences, cause, why))
    return Reconciliation(tuple(comparisons))


def _pair_cause(
    bt: TradeRecord,
    pt: TradeRecord,
    differences: tuple[Difference, ...],
    symbol_diverged: bool,
    any_diverged: bool,
    manual: Sequence[TradingEvent],
) -> tuple[Cause, str]:
    if not differences:
        if pt.is_open and bt.exit_reason == "end_of_data":
            return (
                "still_open",
                "The backtest closed this trade at the end of its data; paper still holds it.",
            )
        return "none", "Same trade."
    fields = {d.field for d in differences}
    if pt.exit_purpose == "flatten" and pt.exit_reason == "kill_switch":
        return "kill_switch", "A kill switch flattened the paper position."
    if pt.exit_purpose in ("manual", "flatten") or pt.entry_purpose == "manual":
        who = "flattened" if pt.exit_purpose == "flatten" else "closed or reduced"
        return "manual_action", f"A user {who} the paper position ({_manual_detail(manual, pt)})."
    if pt.partial and "quantity" in fields:
        return "partial_fill", "The paper order filled in parts (volume limit), so its quantity differs."
    if fields & {"entry_time", "exit_time"}:
        if symbol_diverged:
            return "knock_on", f"Follows an earlier explained difference on {bt.symbol}."
        return "timing", "Paper entered or left at another bar than the backtest."
    if fields <= {"entry_price", "exit_price", "entry_fee", "exit_fee"}:
        return "fill_price", "Same bars, other fill prices (quote, spread or cost model)."
    if fields <= {"quantity", "entry_fee", "exit_fee"} and any_diverged:
        return "knock_on", "Sized from an equity an earlier explained difference changed."
    return "unexplained", "The trades differ and nothing recorded says why."


def _manual_detail(manual: Sequence[TradingEvent], trade: TradeRecord) -> str:
    end = trade.exit_time if trade.exit_time is not None else math.inf
    for event in manual:
        if event.symbol in (trade.symbol, None) and trade.entry_time <= event.time <= end:
            return event.detail
    return "manual order"


def _missing_cause(
    bt: TradeRecord, refusals: Sequence[TradingEvent], switch_times: set[int], symbol_diverged: bool
) -> tuple[Cause, str]:
    for event in refusals:
        if event.symbol == bt.symbol and event.time == bt.signal_time:
            if event.time in switch_times:
                return "kill_switch", f"The entry was refused while a kill switch was on: {event.detail}"
            return "blocked_by_risk", f"The risk gate refused the entry: {event.detail}"
    if bt.signal_time in switch_times:
        return "kill_switch", "A kill switch was on when the backtest entered."
    if symbol_diverged:
        return "knock_on", f"Follows an earlier explained difference on {bt.symbol}."
    return "unexplained", "The backtest traded where paper did not, and nothing recorded says why."
