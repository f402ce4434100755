"""Risk: a deployment's limits, its trading state, kill switches, and the gate every order passes.

**Limits** (``RiskLimits``; ``None`` switches one off): ``max_position_notional`` (account currency,
a position's value after the order), ``max_symbol_exposure`` (a position's value as a fraction of
equity), ``max_daily_loss`` (a fraction of the day's starting equity: the equity at the last close
of the previous UTC day), ``max_drawdown`` (a fraction of the highest equity seen),
``max_orders_per_minute`` (orders that add risk, on the decision clock: the wall clock live, bar
times on a replay unless infra passes its own) and ``allowed_symbols``. The units are the REST
schema's (``core.trading.schemas.RiskLimits``).

**Trading states.** ``ACTIVE`` trades normally. ``REDUCING`` and ``HALTED`` both let only orders
that reduce risk through (exits, stops, closes, reductions, flattening); what differs is why they
hold and how they end (``evaluate_state``, run at the start of every cycle):

* ``HALTED`` while a kill switch is on (until it is cleared), for the rest of the UTC day once the
  daily loss reached its limit (the next day starts ``ACTIVE`` again), and until an operator resumes
  it once the drawdown reached its limit, equity fell to zero (``liquidation``) or an operator
  halted it;
* ``REDUCING`` while a position is above a notional or exposure limit (prices moved it there; it
  ends when the position is back within), or until an operator resumes an operator's reduce-only;
* ``ACTIVE`` otherwise. ``HALTED`` wins over ``REDUCING``. Every status carries its reasons.

**Kill switches** (``KillSwitch``) exist at three scopes: one deployment, all of a user's, everyone's
(global); ``switches_for`` picks those that apply to a deployment. One that applies halts the
deployment at its next cycle and, with ``flatten``, has that cycle close every position and cancel
every working order.

**The gate.** ``check(order, snapshot, limits)`` -> ``RiskDecision``: allowed or refused, the rule
that decided, a sentence, and the numbers it compared (infra records every decision). An order that
reduces risk (``order_effect``) always passes: safety never waits for a limit. An order that adds
risk is refused, in this order of rules, by: an active kill switch, a trading state other than
ACTIVE, the daily loss or drawdown limit already reached, a symbol not allowed, the orders-per-minute
limit, the position notional limit, the symbol exposure limit. An order sized at fill is judged at
the quantity the engine's sizing gives at the last mark (its fill price is not known yet).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from packages.domain.trading.costs import CostModel
from packages.domain.trading.fill_rules import target_quantity
from packages.domain.trading.orders import OrderSpec, Quantity, SizeAtFill

TradingState = Literal["ACTIVE", "REDUCING", "HALTED"]
KillSwitchScope = Literal["deployment", "user", "global"]
OrderEffect = Literal["adds", "reduces"]
OperatorAction = Literal["halt", "reduce_only", "resume"]

NS_PER_DAY: Final = 86_400 * 1_000_000_000
NS_PER_MINUTE: Final = 60 * 1_000_000_000

HALT_REASONS: Final = frozenset({"kill_switch", "daily_loss", "drawdown", "liquidation", "operator_halt"})
REDUCE_REASONS: Final = frozenset({"exposure", "operator_reduce"})
# Reasons that hold until an operator resumes the deployment.
STICKY_REASONS: Final = frozenset({"drawdown", "liquidation", "operator_halt", "operator_reduce"})


@dataclass(frozen=True)
class RiskLimits:
    max_position_notional: float | None = None
    max_symbol_exposure: float | None = None  # fraction of equity
    max_daily_loss: float | None = None  # fraction of the day's starting equity
    max_drawdown: float | None = None  # fraction of peak equity
    max_orders_per_minute: int | None = None
    allowed_symbols: frozenset[str] | None = None

    def problems(self) -> list[str]:
        """What makes these limits unusable, in words a user understands (empty when they are sane)."""
        found: list[str] = []
        notional = self.max_position_notional
        if notional is not None and not (math.isfinite(notional) and notional > 0):
            found.append("The maximum position value must be a positive amount.")
        daily = self.max_daily_loss
        if daily is not None and not (math.isfinite(daily) and 0 < daily < 1):
            found.append("The maximum daily loss must be a fraction above 0 and below 1 (0.05 is 5%).")
        exposure = self.max_symbol_exposure
        if exposure is not None and not (math.isfinite(exposure) and 0 < exposure <= 10):
            found.append(
                "The maximum exposure per symbol must be a fraction of equity above 0 and at most 10."
            )
        drawdown = self.max_drawdown
        if drawdown is not None and not (math.isfinite(drawdown) and 0 < drawdown < 1):
            found.append("The maximum drawdown must be a fraction above 0 and below 1 (0.2 is 20%).")
        if self.max_orders_per_minute is not None and self.max_orders_per_minute < 1:
            found.append("The maximum number of orders per minute must be at least 1.")
        if self.allowed_symbols is not None and not self.allowed_symbols:
            found.append("The list of allowed symbols is empty: no order could ever be placed.")
        return found


@dataclass(frozen=True)
class KillSwitch:
    scope: KillSwitchScope
    target: str | None = None  # the deployment id or user id (None for the global switch)
    flatten: bool = False
    reason: str = ""
    set_at: int = 0

    def __post_init__(self) -> None:
        if (self.scope == "global") != (self.target is None):
            raise ValueError("a global kill switch has no target; the others name theirs")


def switches_for(
    switches: Iterable[KillSwitch], *, deployment_id: str, user_id: str
) -> tuple[KillSwitch, ...]:
    """The switches that stop ``deployment_id`` (owned by ``user_id``)."""
    return tuple(
        s
        for s in switches
        if s.scope == "global"
        or (s.scope == "user" and s.target == user_id)
        or (s.scope == "deployment" and s.target == deployment_id)
    )


@dataclass(frozen=True)
class TradingStatus:
    """A deployment's trading state with the facts its rules read; infra stores it after every cycle."""

    state: TradingState = "ACTIVE"
    reasons: frozenset[str] = frozenset()
    day: int = -1  # UTC day number of the last evaluation
    day_start_equity: float = math.nan
    peak_equity: float = math.nan
    last_equity: float = math.nan

    @classmethod
    def starting(cls, capital: float) -> TradingStatus:
        return cls(day_start_equity=capital, peak_equity=capital, last_equity=capital)

    @property
    def drawdown(self) -> float:
        """Current equity below the peak, as a fraction (0 at a peak)."""
        if not (self.peak_equity > 0):
            return 0.0
        return max(1.0 - self.last_equity / self.peak_equity, 0.0)


def _state_of(reasons: frozenset[str]) -> TradingState:
    if reasons & HALT_REASONS:
        return "HALTED"
    if reasons & REDUCE_REASONS:
        return "REDUCING"
    return "ACTIVE"


def evaluate_state(
    status: TradingStatus,
    *,
    time: int,
    equity: float,
    position_values: Mapping[str, float],
    limits: RiskLimits,
    kill_switches: Sequence[KillSwitch] = (),
) -> TradingStatus:
    """The status at the close of the bar of ``time`` with ``equity`` and the positions' marked values."""
    day = time // NS_PER_DAY
    new_day = day != status.day
    if new_day:
        day_start = status.last_equity if math.isfinite(status.last_equity) else equity
    else:
        day_start = status.day_start_equity if math.isfinite(status.day_start_equity) else equity
    peak = equity if not math.isfinite(status.peak_equity) else max(status.peak_equity, equity)
    reasons = set(status.reasons & STICKY_REASONS)
    if "daily_loss" in status.reasons and not new_day:
        reasons.add("daily_loss")
    if kill_switches:
        reasons.add("kill_switch")
    if limits.max_daily_loss is not None and _daily_loss_reached(equity, day_start, limits.max_daily_loss):
        reasons.add("daily_loss")
    if limits.max_drawdown is not None and peak > 0 and equity <= peak * (1.0 - limits.max_drawdown):
        reasons.add("drawdown")
    if equity <= 0:
        reasons.add("liquidation")
    if any(_above(abs(value), equity, limits) is not None for value in position_values.values()):
        reasons.add("exposure")
    final = frozenset(reasons)
    return TradingStatus(_state_of(final), final, day, day_start, peak, equity)


def _daily_loss_reached(equity: float, day_start: float, limit: float) -> bool:
    return equity <= day_start * (1.0 - limit)


def _above(value: float, equity: float, limits: RiskLimits) -> str | None:
    """The limit a position worth ``value`` breaks (None when within every limit)."""
    if limits.max_position_notional is not None and value > limits.max_position_notional:
        return "max_position_notional"
    if limits.max_symbol_exposure is not None and (
        equity <= 0 or value / equity > limits.max_symbol_exposure
    ):
        return "max_symbol_exposure"
    return None


def operator_action(status: TradingStatus, action: OperatorAction) -> TradingStatus:
    """An operator halts, puts in reduce-only, or resumes (clearing the reasons only an operator clears)."""
    if action == "halt":
        reasons = status.reasons | {"operator_halt"}
    elif action == "reduce_only":
        reasons = status.reasons | {"operator_reduce"}
    else:
        reasons = status.reasons - STICKY_REASONS
    return replace(status, state=_state_of(reasons), reasons=reasons)


@dataclass(frozen=True)
class RiskSnapshot:
    """What the gate reads: the account at the decision instant and the deployment's risk facts."""

    time: int  # the decision's clock (ns)
    equity: float
    positions: Mapping[str, float]  # signed quantities
    marks: Mapping[str, float]
    status: TradingStatus = field(default_factory=TradingStatus)
    kill_switches: tuple[KillSwitch, ...] = ()
    recent_orders: Sequence[int] = ()  # decision times of orders that added risk


@dataclass(frozen=True)
class RiskDecision:
    client_order_id: str
    symbol: str
    time: int
    allowed: bool
    rule: str  # the rule that refused, "reduces_risk" or "within_limits" when allowed
    message: str
    effect: OrderEffect
    compared: Mapping[str, float | str | None] = field(default_factory=dict)


def order_effect(order: OrderSpec, positions: Mapping[str, float]) -> OrderEffect:
    """``reduces`` for orders that can only shrink the position they act on, ``adds`` otherwise."""
    if order.reduces_only:
        return "reduces"
    held = positions.get(order.symbol, 0.0)
    if (
        order.purpose != "entry"
        and isinstance(order.size, Quantity)
        and held != 0
        and (held > 0) != (order.direction > 0)
        and order.size.units <= abs(held)
    ):
        return "reduces"
    return "adds"


def reference_price(order: OrderSpec, marks: Mapping[str, float]) -> float:
    if order.type == "limit" and order.limit_price is not None:
        return order.limit_price
    if order.type == "stop" and order.stop_price is not None:
        return order.stop_price
    return marks.get(order.symbol, math.nan)


def estimated_units(order: OrderSpec, snapshot: RiskSnapshot, cost: CostModel) -> float:
    """The units the order is expected to trade (sizing rules evaluated at the reference price)."""
    size = order.size
    if isinstance(size, Quantity):
        return size.units
    if isinstance(size, SizeAtFill):
        price = reference_price(order, snapshot.marks)
        return target_quantity(
            size.mode, size.value, size.reference, snapshot.equity, price, cost.fee_rate, cost.fee_fixed
        )
    return abs(snapshot.positions.get(order.symbol, 0.0))


def check(
    order: OrderSpec, snapshot: RiskSnapshot, limits: RiskLimits, cost: CostModel | None = None
) -> RiskDecision:
    """Allow or refuse ``order``; the decision names the rule and the numbers it compared."""
    effect = order_effect(order, snapshot.positions)

    def decide(allowed: bool, rule: str, message: str, **compared: float | str | None) -> RiskDecision:
        return RiskDecision(
            order.client_order_id, order.symbol, snapshot.time, allowed, rule, message, effect, compared
        )

    if effect == "reduces":
        return decide(True, "reduces_risk", "The order reduces a position: risk limits never hold it back.")
    status = snapshot.status
    if snapshot.kill_switches:
        switch = snapshot.kill_switches[0]
        return decide(
            False,
            "kill_switch",
            f"A {switch.scope} kill switch is on: no order may add risk.",
            scope=switch.scope,
        )
    if status.state != "ACTIVE":
        reasons = ", ".join(sorted(status.reasons)) or "operator"
        return decide(
            False,
            "trading_state",
            f"Trading is {status.state} ({reasons}): only orders that reduce risk are accepted.",
            state=status.state,
            reasons=reasons,
        )
    day_start = status.day_start_equity
    if (
        limits.max_daily_loss is not None
        and day_start > 0
        and _daily_loss_reached(snapshot.equity, day_start, limits.max_daily_loss)
    ):
        return decide(
            False,
            "max_daily_loss",
            "Today's loss reached the daily loss limit.",
            value=1.0 - snapshot.equity / day_start,
            limit=limits.max_daily_loss,
            day_start_equity=day_start,
            equity=snapshot.equity,
        )
    if limits.max_drawdown is not None and status.peak_equity > 0:
        drawdown = 1.0 - snapshot.equity / status.peak_equity
        # The same comparison as ``evaluate_state``: equity at or below the peak less the limit.
        if snapshot.equity <= status.peak_equity * (1.0 - limits.max_drawdown):
            return decide(
                False,
                "max_drawdown",
                "Equity fell from its peak by the drawdown limit or more.",
                value=drawdown,
                limit=limits.max_drawdown,
            )
    if limits.allowed_symbols is not None and order.symbol not in limits.allowed_symbols:
        return decide(
            False, "allowed_symbols", f"{order.symbol} is not among the symbols this deployment may trade."
        )
    if limits.max_orders_per_minute is not None:
        recent = sum(1 for t in snapshot.recent_orders if snapshot.time - NS_PER_MINUTE < t <= snapshot.time)
        if recent >= limits.max_orders_per_minute:
            return decide(
                False,
                "max_orders_per_minute",
                "The deployment placed as many orders in the last minute as its limit allows.",
                value=recent,
                limit=limits.max_orders_per_minute,
            )
    price = reference_price(order, snapshot.marks)
    units = estimated_units(order, snapshot, cost or CostModel())
    after = snapshot.positions.get(order.symbol, 0.0) + order.direction * units
    value = abs(after) * price if math.isfinite(price) else math.nan
    if limits.max_position_notional is not None and not value <= limits.max_position_notional:
        return decide(
            False,
            "max_position_notional",
            f"The position in {order.symbol} would be worth more than its limit.",
            value=value,
            limit=limits.max_position_notional,
            price=price,
            units=units,
        )
    if limits.max_symbol_exposure is not None:
        exposure = value / snapshot.equity if snapshot.equity > 0 else math.inf
        if not exposure <= limits.max_symbol_exposure:
            return decide(
                False,
                "max_symbol_exposure",
                f"The position in {order.symbol} would exceed its share of equity.",
                value=exposure,
                limit=limits.max_symbol_exposure,
                price=price,
                units=units,
            )
    return decide(
        True, "within_limits", "The order is within every limit.", value=value, price=price, units=units
    )
