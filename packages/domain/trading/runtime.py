"""One cycle of a deployment at a closed bar: the compiled strategy's decisions as orders, pure.

**What a cycle reads** (``CycleInput``): the strategy's plan at the closed bar, evaluated over a
bounded window with the backtest's compiled strategy (``window.evaluate_window`` -> ``BarSignals``),
the account after the bar's fills (cash, positions, marks at the close), what it keeps about each
position (``round_trips.PositionMeta``), the working orders, the trading status, limits, kill
switches and manual actions.

**What a cycle decides** (``run_cycle`` -> ``CycleOutput``: orders to submit, orders to cancel, the
decisions made, every risk decision, the new trading status), as the engine decides at a bar's close
(``backtest._kernel.run_bars``, step 3), in this order:

1. **Risk state.** ``risk.evaluate_state`` with equity at the close. When trading may not add risk
   (a kill switch, a state other than ACTIVE), working entries are canceled.
2. **Exits.** For each held symbol of the universe without a market exit already working: the
   side's signal exits (read only after the entry's signal bar) and time exits (``bars`` bars after
   the fill; a fill at the open counts its own bar), first rule first, become a market order closing
   the position at the next open. When equity is at or below zero every position is closed
   (``liquidation``) and nothing enters any more; a kill switch with ``flatten`` closes every
   position and cancels every working order. Stops, targets and trailing stops are not decided
   here: they rest at the broker from the entry's fill (``orders.ProtectiveLeg``).
3. **Manual actions** (``manual``) become orders and cancels.
4. **Entries**, once the window covers the warm-up: symbol by symbol, the first side whose entry
   signal holds, unless an entry already works on the symbol or it is held (a position with an
   exit decided may reverse into the other side); market entries work for the next bar, limit and
   stop entries at the plan's price for the side's validity; the size is the side's sizing rule at
   the fill (``orders.SizeAtFill``); the protective legs carry the exits' distances read now. At
   most ``max_open_positions`` positions and working entries together. A **rotation** strategy
   instead rebalances every ``every_bars`` bars of the deployment (``bar_number``): it holds the
   ``top_n`` best-scored symbols whose entry holds, closing the others (``rotation``).
5. **The gate.** Every order passes ``risk.check`` in submission order (strategy exits, flattening,
   manual reductions, strategy entries, manual opens); refused orders are not submitted and their
   decisions say why. A refused entry still took its place among ``max_open_positions`` in this
   bar, as the strategy decided it.

A position opened by hand is managed by the strategy side of its direction: that side's signal and
time exits apply to it (it has no protective legs), and in a symbol of the universe it counts among
``max_open_positions``.

Order ids are deterministic (``orders.OrderIds``): a cycle run twice on the same inputs asks for the
same orders, and a cycle that sees its own orders working asks for none again.

**Not supported** (``readiness.unsupported_features`` refuses these assumptions): ``trade_on_close``
(paper cannot trade the close of a bar it only knows once the bar is over) and short borrow fees
(``borrow_rate``). Every strategy that compiles runs, rotation included. Finer intrabar bars are a
backtest input without a paper equivalent: compare paper trading with backtests run without them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from packages.domain.strategy.plan import Side
from packages.domain.trading.costs import CostBook
from packages.domain.trading.manual import ManualAction, ManualRefusal, manual_intents
from packages.domain.trading.orders import (
    CancelIntent,
    ClosePosition,
    OrderIds,
    OrderSpec,
    ProtectiveLeg,
    SizeAtFill,
)
from packages.domain.trading.risk import (
    NS_PER_MINUTE,
    KillSwitch,
    RiskDecision,
    RiskLimits,
    RiskSnapshot,
    TradingState,
    TradingStatus,
    check,
    evaluate_state,
)
from packages.domain.trading.round_trips import PositionMeta
from packages.domain.trading.simulated_broker import AccountBook, WorkingOrder
from packages.domain.trading.window import BarSignals, SideAtBar

_AT_OFFSET = {"open": 0.0, "intrabar": 0.5, "close": 1.0}
_PROTECTIVE_KINDS = ("stop_loss", "take_profit", "trailing_stop", "bracket")


# --- the cycle ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CycleInput:
    deployment_id: str
    signals: BarSignals
    bar_number: int  # bars since the deployment's first bar (0 on it): the rotation's clock
    book: AccountBook  # after the bar's fills, marked at its close
    positions: Mapping[str, PositionMeta]
    open_orders: Sequence[WorkingOrder]
    costs: CostBook
    limits: RiskLimits = field(default_factory=RiskLimits)
    status: TradingStatus = field(default_factory=TradingStatus)
    kill_switches: tuple[KillSwitch, ...] = ()
    manual_actions: tuple[ManualAction, ...] = ()
    recent_orders: tuple[int, ...] = ()  # clock times of earlier orders that added risk
    clock_time: int | None = None  # the orders-per-minute clock (the wall clock live); None: the bar's time


DecisionKind = Literal["entry", "exit", "rotation_exit", "liquidation", "flatten"]


@dataclass(frozen=True)
class SignalRecord:
    """A decision of the strategy (or of a safety rule) at this bar, and whether its order went out."""

    time: int
    symbol: str
    kind: DecisionKind
    side: Side | None
    rule: str | None
    client_order_id: str
    submitted: bool


@dataclass(frozen=True)
class CycleOutput:
    time: int
    equity: float
    previous_state: TradingState
    status: TradingStatus
    submit: tuple[OrderSpec, ...]
    cancel: tuple[CancelIntent, ...]
    signals: tuple[SignalRecord, ...]
    decisions: tuple[RiskDecision, ...]
    manual_refusals: tuple[ManualRefusal, ...]
    manual_orders: Mapping[str, str]  # client order id -> manual action id
    recent_orders: tuple[int, ...]  # ``recent_orders`` for the next cycle (the last minute's)


class _Cycle:
    def __init__(self, inp: CycleInput) -> None:
        self.inp = inp
        self.signals = inp.signals
        self.time = inp.signals.time
        self.ids = OrderIds(inp.deployment_id, self.time)
        self.positions = {s: q for s, q in inp.book.positions.items() if q != 0}
        self.open_orders = [o for o in inp.open_orders if o.is_open]
        self.cancels: list[CancelIntent] = []
        self.records: list[tuple[DecisionKind, OrderSpec]] = []
        universe = set(self.signals.symbols)
        order = (*self.signals.symbols, *sorted(set(self.positions) - universe))
        self.values = {s: q * inp.book.marks.get(s, math.nan) for s, q in self.positions.items()}
        value = 0.0
        for symbol in order:
            if symbol in self.values:
                value += self.values[symbol]
        self.equity = inp.book.cash + value

    def cancel(self, order: WorkingOrder, reason: str) -> None:
        if all(c.client_order_id != order.client_order_id for c in self.cancels):
            self.cancels.append(CancelIntent(order.client_order_id, reason))

    def live_orders(self) -> list[WorkingOrder]:
        canceled = {c.client_order_id for c in self.cancels}
        return [o for o in self.open_orders if o.client_order_id not in canceled]

    def close_order(self, symbol: str, purpose: Literal["exit", "flatten"], rule: str) -> OrderSpec:
        return OrderSpec(
            client_order_id=self.ids.next(symbol, purpose),
            symbol=symbol,
            side="sell" if self.positions[symbol] > 0 else "buy",
            type="market",
            size=ClosePosition(),
            purpose=purpose,
            valid_bars=None,
            exit_rule=rule,
            strategy_side=self.side_of(symbol),
            signal_time=self.time,
        )

    def side_of(self, symbol: str) -> Side:
        meta = self.inp.positions.get(symbol)
        if meta is not None:
            return meta.side
        return "long" if self.positions[symbol] > 0 else "short"

    def exit_reason(self, column: int, symbol: str) -> str | None:
        """The first signal or time exit rule of the held side that fires at this close."""
        if not math.isfinite(self.signals.close[column]):
            return None
        meta = self.inp.positions.get(symbol)
        side = next((s for s in self.signals.sides if s.side == self.side_of(symbol)), None)
        if side is None or meta is None:
            return None
        for rule in side.exits:
            if rule.kind == "signal":
                assert rule.signal is not None
                if self.time > meta.signal_time and bool(rule.signal[column]):
                    return rule.name
            elif rule.kind == "time_exit":
                assert rule.bars is not None
                held = self.signals.bars_since(meta.entry_time) + 1.0 - _AT_OFFSET[meta.entry_at]
                if held >= rule.bars:
                    return rule.name
        return None

    def entry_order(self, side: SideAtBar, column: int, symbol: str) -> OrderSpec | None:
        price = math.nan
        if side.order_kind != "market":
            assert side.order_price is not None
            price = float(side.order_price[column])
            if not price > 0:
                return None
        reference = math.nan if side.sizing_reference is None else float(side.sizing_reference[column])
        legs = tuple(
            ProtectiveLeg(
                rule=rule.name,
                kind=rule.kind,  # type: ignore[arg-type]
                distance=None if rule.distance is None else float(rule.distance[column]),
                fraction=rule.fraction if rule.distance is None else None,
                reward_ratio=rule.reward_ratio,
            )
            for rule in side.exits
            if rule.kind in _PROTECTIVE_KINDS
        )
        return OrderSpec(
            client_order_id=self.ids.next(symbol, "entry"),
            symbol=symbol,
            side="buy" if side.side == "long" else "sell",
            type=side.order_kind,
            size=SizeAtFill(side.sizing_mode, side.sizing_value, reference),
            purpose="entry",
            limit_price=price if side.order_kind == "limit" else None,
            stop_price=price if side.order_kind == "stop" else None,
            valid_bars=1 if side.order_kind == "market" else side.valid_bars,
            protective=legs,
            strategy_side=side.side,
            signal_time=self.time,
        )

    def run(self) -> CycleOutput:
        inp = self.inp
        signals = self.signals
        previous = inp.status.state
        status = evaluate_state(
            inp.status,
            time=self.time,
            equity=self.equity,
            position_values=self.values,
            limits=inp.limits,
            kill_switches=inp.kill_switches,
        )
        flatten_switch = any(s.flatten for s in inp.kill_switches)
        liquidating = "liquidation" in status.reasons
        if status.state != "ACTIVE" or inp.kill_switches:
            for working in self.open_orders:
                if not working.is_protective and not working.spec.reduces_only:
                    self.cancel(working, f"trading is {status.state.lower()}: no order may add risk")
        if flatten_switch:
            for working in self.open_orders:
                if not working.is_protective:
                    self.cancel(working, "kill switch: flatten")

        # 2. exits
        exit_queued = {
            o.spec.symbol
            for o in self.live_orders()
            if isinstance(o.spec.size, ClosePosition) and (o.spec.type == "market" or o.triggered)
        }
        exits: list[OrderSpec] = []
        flattening: list[OrderSpec] = []
        active = sum(1 for o in self.live_orders() if o.spec.purpose == "entry" and not o.is_protective)
        for column, symbol in enumerate(signals.symbols):
            if symbol not in self.positions or symbol in exit_queued:
                continue
            reason = "liquidation" if liquidating else self.exit_reason(column, symbol)
            if reason is None:
                if flatten_switch:
                    order = self.close_order(symbol, "flatten", "kill_switch")
                    flattening.append(order)
                    self.records.append(("flatten", order))
                    exit_queued.add(symbol)
                else:
                    active += 1
                continue
            order = self.close_order(symbol, "exit", reason)
            exits.append(order)
            self.records.append(("liquidation" if liquidating else "exit", order))
            exit_queued.add(symbol)
        if flatten_switch:
            for symbol in sorted(set(self.positions) - set(signals.symbols) - exit_queued):
                order = self.close_order(symbol, "flatten", "kill_switch")
                flattening.append(order)
                self.records.append(("flatten", order))
                exit_queued.add(symbol)

        # 3. manual actions
        manual = manual_intents(
            inp.manual_actions, ids=self.ids, positions=self.positions, open_orders=self.live_orders()
        )
        for intent in manual.cancels:
            if all(c.client_order_id != intent.client_order_id for c in self.cancels):
                self.cancels.append(intent)
        manual_reducing = [o for o in manual.orders if o.reduces_only]
        manual_adding = [o for o in manual.orders if not o.reduces_only]
        for order in manual_reducing:
            if isinstance(order.size, ClosePosition):
                exit_queued.add(order.symbol)

        # 4. entries
        entries: list[OrderSpec] = []
        if signals.warmed_up and not liquidating:
            if signals.rotation is not None:
                entries = self.rotate(exits, exit_queued)
            elif active < signals.max_open_positions:
                entries = self.enter(active, exit_queued)

        # 5. the gate
        submit: list[OrderSpec] = []
        decisions: list[RiskDecision] = []
        now = self.time if inp.clock_time is None else inp.clock_time
        recent = [t for t in inp.recent_orders if t > now - NS_PER_MINUTE]
        marks = self.gate_marks()
        for order in (*exits, *flattening, *manual_reducing, *entries, *manual_adding):
            snapshot = RiskSnapshot(
                time=now,
                equity=self.equity,
                positions=self.positions,
                marks=marks,
                status=status,
                kill_switches=inp.kill_switches,
                recent_orders=recent,
            )
            decision = check(order, snapshot, inp.limits, inp.costs.for_symbol(order.symbol))
            decisions.append(decision)
            if decision.allowed:
                submit.append(order)
                if decision.effect == "adds":
                    recent.append(now)
        sent = {o.client_order_id for o in submit}
        records = tuple(
            SignalRecord(
                self.time,
                order.symbol,
                kind,
                order.strategy_side,
                order.exit_rule,
                order.client_order_id,
                order.client_order_id in sent,
            )
            for kind, order in self.records
        )
        return CycleOutput(
            time=self.time,
            equity=self.equity,
            previous_state=previous,
            status=status,
            submit=tuple(submit),
            cancel=tuple(self.cancels),
            signals=records,
            decisions=tuple(decisions),
            manual_refusals=manual.refusals,
            manual_orders=manual.origin,
            recent_orders=tuple(recent),
        )

    def gate_marks(self) -> dict[str, float]:
        """Marks for the gate: held symbols at their marks, the others at this bar's close."""
        marks = {s: float(c) for s, c in zip(self.signals.symbols, self.signals.close, strict=True)}
        marks.update(self.inp.book.marks)
        return marks

    def enter(self, active: int, exit_queued: set[str]) -> list[OrderSpec]:
        signals = self.signals
        working = {
            o.spec.symbol for o in self.live_orders() if o.spec.purpose == "entry" and not o.is_protective
        }
        entries: list[OrderSpec] = []
        for column, symbol in enumerate(signals.symbols):
            for side in signals.sides:
                if not bool(side.entry[column]):
                    continue
                held = symbol in self.positions
                if symbol in working or (held and symbol not in exit_queued):
                    break
                if held and side.side == self.side_of(symbol):
                    continue
                if not math.isfinite(signals.close[column]):
                    break
                order = self.entry_order(side, column, symbol)
                if order is not None:
                    entries.append(order)
                    self.records.append(("entry", order))
                    working.add(symbol)
                    active += 1
                break
            if active >= signals.max_open_positions:
                break
        return entries

    def rotate(self, exits: list[OrderSpec], exit_queued: set[str]) -> list[OrderSpec]:
        """The engine's rebalance: hold the ``top_n`` best-scored symbols whose first side's entry holds."""
        signals = self.signals
        rotation = signals.rotation
        assert rotation is not None
        if self.inp.bar_number % max(rotation.every_bars, 1) != 0:
            return []
        first = signals.sides[0]
        n = len(signals.symbols)
        wanted = [False] * n
        ranking: list[int] = []
        for _ in range(min(rotation.top_n, signals.max_open_positions, n)):
            best = -1
            best_score = -math.inf
            for j in range(n):
                score = float(rotation.score[j])
                if wanted[j] or math.isnan(score) or math.isnan(signals.close[j]) or not bool(first.entry[j]):
                    continue
                if best < 0 or score > best_score:
                    best, best_score = j, score
            if best < 0:
                break
            wanted[best] = True
            ranking.append(best)
        for j, symbol in enumerate(signals.symbols):
            if (
                symbol not in self.positions
                or symbol in exit_queued
                or self.side_of(symbol) != first.side
                or wanted[j]
            ):
                continue
            order = self.close_order(symbol, "exit", "rotation")
            exits.append(order)
            self.records.append(("rotation_exit", order))
            exit_queued.add(symbol)
        working = {
            o.spec.symbol for o in self.live_orders() if o.spec.purpose == "entry" and not o.is_protective
        }
        entries: list[OrderSpec] = []
        for j in ranking:
            symbol = signals.symbols[j]
            if symbol in working:
                continue
            if symbol in self.positions and (symbol not in exit_queued or self.side_of(symbol) == first.side):
                continue
            entry = self.entry_order(first, j, symbol)
            if entry is not None:
                entries.append(entry)
                self.records.append(("entry", entry))
        return entries


def run_cycle(inp: CycleInput) -> CycleOutput:
    """The deployment's decisions at the close of ``inp.signals.time`` (see the module docstring)."""
    return _Cycle(inp).run()
