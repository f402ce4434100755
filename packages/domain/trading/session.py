"""A deployment run in memory, bar by bar: the paper broker, the ledger, the cycle and the gate together.

``PaperSession.step(bars, row)`` is what infra does for one closed bar, without a database: the
paper broker matches the working orders against the bar (``simulated_broker``) and books the fills
in the ledger; the cycle evaluates the strategy over its window ending at the bar (``runtime``) and
decides; cancels and the orders the gate allowed go to the broker. Replays, tests and the benchmark
drive it; ``events`` collects what reconciliation needs to explain a difference (risk refusals,
manual actions, kill switches).

The first step is the deployment's first bar: the account is flat with its capital, as a backtest
starting at that bar is, and ``bar_number`` counts bars from it (the rotation's clock).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from packages.domain.strategy.bars import BarsLike
from packages.domain.strategy.compiler import CompiledStrategy
from packages.domain.trading.broker import PaperAccount
from packages.domain.trading.costs import CostBook
from packages.domain.trading.ledger import deposit
from packages.domain.trading.manual import ManualAction
from packages.domain.trading.paper_broker import PaperBroker
from packages.domain.trading.reconciliation import TradingEvent
from packages.domain.trading.risk import KillSwitch, RiskLimits, TradingStatus
from packages.domain.trading.round_trips import RoundTrip, TradeBook, open_positions
from packages.domain.trading.runtime import CycleInput, CycleOutput, run_cycle
from packages.domain.trading.simulated_broker import BarOutcome, MarketBar
from packages.domain.trading.window import SETTLE_PER_WARMUP_BAR, bars_window, evaluate_window, window_bars


@dataclass(frozen=True)
class SessionStep:
    outcome: BarOutcome  # the bar's fills and order events
    cycle: CycleOutput  # the decisions at its close


def market_bars(bars: BarsLike, row: int) -> dict[str, MarketBar]:
    """The bar of every symbol that has one at ``row`` (a symbol without an open is not traded)."""
    values = [np.asarray(getattr(bars, name))[row] for name in ("open", "high", "low", "close", "volume")]
    return {
        symbol: MarketBar(*(float(v[column]) for v in values))
        for column, symbol in enumerate(bars.symbols)
        if math.isfinite(values[0][column])
    }


@dataclass
class PaperSession:
    deployment_id: str
    strategy: CompiledStrategy
    capital: float
    costs: CostBook
    limits: RiskLimits = field(default_factory=RiskLimits)
    settle_per_warmup_bar: int = SETTLE_PER_WARMUP_BAR
    funded_at: int = 0

    def __post_init__(self) -> None:
        self.broker = PaperBroker(
            PaperAccount(self.deployment_id), symbols=self.strategy.symbols, costs=self.costs
        )
        self.broker.record(deposit(self.funded_at, self.capital, "allocated capital"))
        self.status = TradingStatus.starting(self.capital)
        self.window = window_bars(self.strategy, settle_per_warmup_bar=self.settle_per_warmup_bar)
        self.bar_number = 0
        self.recent_orders: tuple[int, ...] = ()
        self.events: list[TradingEvent] = []
        self.steps: list[SessionStep] = []
        self.book = TradeBook()

    def trades(self) -> list[RoundTrip]:
        """Every trade so far, closed and open, by entry."""
        return list(self.book.trades)

    def step(
        self,
        bars: BarsLike,
        row: int,
        *,
        manual_actions: Sequence[ManualAction] = (),
        kill_switches: Sequence[KillSwitch] = (),
    ) -> SessionStep:
        """Run the bar at ``row`` of ``bars`` (which hold the history before it): fills, then the cycle."""
        time = int(np.asarray(bars.index)[row])
        outcome = self.broker.on_bar(time, market_bars(bars, row))
        for fill in outcome.fills:
            self.book.add(fill)
        signals = evaluate_window(self.strategy, bars_window(bars, row, self.window))
        cycle = run_cycle(
            CycleInput(
                deployment_id=self.deployment_id,
                signals=signals,
                bar_number=self.bar_number,
                book=outcome.book,
                positions=open_positions(self.book.open_trades()),
                open_orders=self.broker.open_orders(),
                costs=self.costs,
                limits=self.limits,
                status=self.status,
                kill_switches=tuple(kill_switches),
                manual_actions=tuple(manual_actions),
                recent_orders=self.recent_orders,
            )
        )
        for intent in cycle.cancel:
            self.broker.cancel(intent.client_order_id)
        for order in cycle.submit:
            self.broker.submit(order)
        self.status = cycle.status
        self.recent_orders = cycle.recent_orders
        self.bar_number += 1
        self.record_events(cycle, manual_actions, kill_switches)
        step = SessionStep(outcome, cycle)
        self.steps.append(step)
        return step

    def record_events(
        self, cycle: CycleOutput, actions: Sequence[ManualAction], switches: Sequence[KillSwitch]
    ) -> None:
        for switch in switches:
            self.events.append(
                TradingEvent(
                    cycle.time, "kill_switch", None, f"{switch.scope} kill switch on: {switch.reason}"
                )
            )
        for action in actions:
            self.events.append(
                TradingEvent(
                    cycle.time, "manual_action", action.symbol, f"{action.kind} by {action.requested_by}"
                )
            )
        for decision in cycle.decisions:
            if not decision.allowed:
                self.events.append(
                    TradingEvent(
                        cycle.time,
                        "risk_refusal",
                        decision.symbol,
                        decision.message,
                        decision.client_order_id,
                    )
                )
