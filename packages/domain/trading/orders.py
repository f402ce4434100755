"""Orders: what a deployment asks a broker to do, and the life of an order once asked.

**An order** (``OrderSpec``) names its symbol, side (``buy``/``sell``), type and size:

* ``market`` orders fill at the next price the broker sees (the next bar's open, or a quote);
  ``limit`` orders at ``limit_price`` or better; ``stop`` orders become market orders once price
  trades through ``stop_price``. A stop with a ``trail`` is a trailing stop: the broker ratchets its
  level behind the best price since the position was opened (``simulated_broker`` says exactly how).
* The size is one of ``Quantity`` (units), ``SizeAtFill`` (the backtest's sizing rule, computed by
  the broker at the fill from the fill price and the account's equity, as the engine does, so paper
  fills equal backtest fills; a live adapter maps it to a notional order) or ``ClosePosition`` (the
  whole position in the symbol when the order fills: exits, stops and targets).
* ``valid_bars`` is how many bars the order works before it expires (1: only the next bar); ``None``
  is good till cancelled.
* ``purpose`` says why the order exists: ``entry`` (a strategy entry), ``exit`` (a strategy exit:
  a signal, time, rotation or liquidation exit, or a stop-loss/take-profit/trailing leg),
  ``manual`` (a user's action) or ``flatten`` (closing everything: a kill switch or a user). Exits
  name their rule in ``exit_rule``. Exits, flattening and manual closes and reductions only ever
  shrink a position (``reduces_only``): the broker cancels them when there is nothing left to close. ``protective`` legs of an entry (stop-loss, take-profit,
  trailing, bracket) are armed by the broker from the entry's fill price: their levels cannot be
  known before it.

**Client order ids** are deterministic: ``client_order_id(deployment, bar_time, symbol, purpose,
sequence)`` always gives the same id for the same inputs, so a retried or duplicated cycle submits
orders the broker (and the ``orders`` table's unique key) already knows, never new ones. Ids fit 64
characters; protective legs derive theirs from the entry's id (``leg_order_id``).

**The state machine.** ``new -> accepted -> (partially_filled ->)* filled``, and from any open state
``canceled``, ``expired`` or ``rejected`` (a broker may refuse an accepted order at the fill, e.g. for
lack of buying power, as the engine rejects an entry it cannot size). ``TRANSITIONS`` is the whole
table; ``transition`` raises ``IllegalTransition`` for anything else, so a filled order can never be
cancelled or filled twice.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from packages.domain.strategy.plan import Side, SizingMode

OrderSide = Literal["buy", "sell"]
OrderType = Literal["market", "limit", "stop"]
OrderPurpose = Literal["entry", "exit", "manual", "flatten"]
OrderStatus = Literal["new", "accepted", "partially_filled", "filled", "canceled", "rejected", "expired"]
OrderEvent = Literal["accept", "reject", "fill_partial", "fill", "cancel", "expire"]
ProtectiveKind = Literal["stop_loss", "take_profit", "trailing_stop", "bracket"]

ORDER_STATUSES: Final[tuple[OrderStatus, ...]] = (
    "new",
    "accepted",
    "partially_filled",
    "filled",
    "canceled",
    "rejected",
    "expired",
)
ORDER_EVENTS: Final[tuple[OrderEvent, ...]] = ("accept", "reject", "fill_partial", "fill", "cancel", "expire")
OPEN_STATUSES: Final[frozenset[OrderStatus]] = frozenset({"new", "accepted", "partially_filled"})
TERMINAL_STATUSES: Final[frozenset[OrderStatus]] = frozenset({"filled", "canceled", "rejected", "expired"})

# (status, event) -> next status; every pair not listed is illegal.
TRANSITIONS: Final[Mapping[tuple[OrderStatus, OrderEvent], OrderStatus]] = {
    ("new", "accept"): "accepted",
    ("new", "reject"): "rejected",
    ("new", "cancel"): "canceled",
    ("accepted", "fill_partial"): "partially_filled",
    ("accepted", "fill"): "filled",
    ("accepted", "cancel"): "canceled",
    ("accepted", "expire"): "expired",
    ("accepted", "reject"): "rejected",
    ("partially_filled", "fill_partial"): "partially_filled",
    ("partially_filled", "fill"): "filled",
    ("partially_filled", "cancel"): "canceled",
    ("partially_filled", "expire"): "expired",
}

_ID_PREFIX = "mz"
_ID_HEX = 32
MAX_ORDER_ID_LENGTH: Final = 64


class IllegalTransition(ValueError):
    """An order event that its current status does not allow."""

    def __init__(self, status: OrderStatus, event: OrderEvent) -> None:
        super().__init__(f"an order that is {status} cannot {event.replace('_', ' ')}")
        self.status = status
        self.event = event


def transition(status: OrderStatus, event: OrderEvent) -> OrderStatus:
    """The status after ``event``; raises ``IllegalTransition`` when the table has no such move."""
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        raise IllegalTransition(status, event) from None


def client_order_id(
    deployment_id: str, bar_time: int, symbol: str, purpose: OrderPurpose, sequence: int
) -> str:
    """The id of the ``sequence``-th order with ``purpose`` on ``symbol`` decided at ``bar_time`` (ns).

    A hash, so ids reveal nothing and fit any broker's length limit; equal inputs, equal id.
    """
    key = f"{deployment_id}\x1f{bar_time}\x1f{symbol}\x1f{purpose}\x1f{sequence}"
    return f"{_ID_PREFIX}-{hashlib.sha256(key.encode()).hexdigest()[:_ID_HEX]}"


class OrderIds:
    """Hands out the ids of one cycle's orders: the n-th order of a purpose on a symbol gets sequence n."""

    def __init__(self, deployment_id: str, bar_time: int) -> None:
        self.deployment_id = deployment_id
        self.bar_time = bar_time
        self._counts: dict[tuple[str, OrderPurpose], int] = {}

    def next(self, symbol: str, purpose: OrderPurpose) -> str:
        sequence = self._counts.get((symbol, purpose), 0)
        self._counts[(symbol, purpose)] = sequence + 1
        return client_order_id(self.deployment_id, self.bar_time, symbol, purpose, sequence)


@dataclass(frozen=True)
class CancelIntent:
    """A request to cancel a working order, with the reason recorded beside it."""

    client_order_id: str
    reason: str


def leg_order_id(parent_id: str, leg: int) -> str:
    """The id of the ``leg``-th protective order armed by the fill of ``parent_id``."""
    return f"{parent_id}.{leg}"


@dataclass(frozen=True)
class Quantity:
    """A fixed number of units."""

    units: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.units) and self.units > 0):
            raise ValueError("a quantity must be a positive number of units")


@dataclass(frozen=True)
class SizeAtFill:
    """The engine's sizing rule, applied by the broker at the fill (``simulated_broker.target_quantity``).

    ``value`` is the quantity, cash amount, equity fraction, risk fraction or annual volatility
    target of ``mode``; ``reference`` is the stop distance (``risk_per_trade``) or the annualised
    volatility (``volatility_target``) read at the signal bar, NaN for the other modes.
    """

    mode: SizingMode
    value: float
    reference: float = math.nan

    def __post_init__(self) -> None:
        if not (math.isfinite(self.value) and self.value > 0):
            raise ValueError("a sizing value must be positive")


@dataclass(frozen=True)
class ClosePosition:
    """The whole position in the order's symbol, whatever it is when the order fills."""


Size = Quantity | SizeAtFill | ClosePosition


@dataclass(frozen=True)
class Trail:
    """How a trailing stop follows price: by an absolute ``distance`` or a ``fraction`` of the extreme."""

    distance: float | None = None
    fraction: float | None = None

    def __post_init__(self) -> None:
        if (self.distance is None) == (self.fraction is None):
            raise ValueError("a trail has exactly one of distance and fraction")


@dataclass(frozen=True)
class ProtectiveLeg:
    """An exit rule attached to an entry, armed from the entry's fill price (the engine's ``_arm_levels``).

    ``distance`` is an absolute price distance read at the signal bar; ``fraction`` a fraction of the
    fill price; exactly one is set. A ``bracket`` arms a stop at the distance and a target at
    ``reward_ratio`` times it.
    """

    rule: str
    kind: ProtectiveKind
    distance: float | None = None
    fraction: float | None = None
    reward_ratio: float | None = None

    def __post_init__(self) -> None:
        if (self.distance is None) == (self.fraction is None):
            raise ValueError(f"exit {self.rule!r}: exactly one of distance and fraction")
        if self.kind == "bracket" and not (self.reward_ratio is not None and self.reward_ratio > 0):
            raise ValueError(f"exit {self.rule!r}: a bracket needs a positive reward ratio")


@dataclass(frozen=True)
class OrderSpec:
    """One order as the domain makes it; ``to_json``/``from_json`` give the form infra stores."""

    client_order_id: str
    symbol: str
    side: OrderSide
    type: OrderType
    size: Size
    purpose: OrderPurpose
    limit_price: float | None = None
    stop_price: float | None = None
    valid_bars: int | None = 1  # None: good till cancelled
    reduce_only: bool = False  # may only shrink the position (never open or flip one)
    exit_rule: str | None = None
    trail: Trail | None = None
    protective: tuple[ProtectiveLeg, ...] = ()
    parent_id: str | None = None  # the entry whose fill armed this protective leg
    strategy_side: Side | None = None  # the trade side (long/short) an entry opens
    signal_time: int | None = None  # open time (ns) of the bar at whose close the order was decided

    def __post_init__(self) -> None:
        if not self.client_order_id or len(self.client_order_id) > MAX_ORDER_ID_LENGTH:
            raise ValueError(f"client order ids have 1 to {MAX_ORDER_ID_LENGTH} characters")
        # A protective leg's level comes from the fill and may lie below zero (a stop further from
        # the entry than the price itself): such a level never triggers, as in the engine.
        leg = self.parent_id is not None
        if self.type == "limit" and not _valid_price(self.limit_price, leg):
            raise ValueError("a limit order needs a positive limit price")
        if self.type == "stop" and not _valid_price(self.stop_price, leg):
            raise ValueError("a stop order needs a positive stop price")
        if self.type != "limit" and self.limit_price is not None:
            raise ValueError(f"a {self.type} order has no limit price")
        if self.type != "stop" and (self.stop_price is not None or self.trail is not None):
            raise ValueError(f"a {self.type} order has no stop price or trail")
        if self.valid_bars is not None and self.valid_bars < 1:
            raise ValueError("an order works for at least one bar")
        if self.protective and self.purpose != "entry":
            raise ValueError("only entries carry protective legs")
        if self.purpose == "entry" and (self.reduce_only or isinstance(self.size, ClosePosition)):
            raise ValueError("an entry adds to a position: it is sized by a quantity or a sizing rule")

    @property
    def reduces_only(self) -> bool:
        """Whether the order can only take units out of a position: exits, flattening, closes, reduces."""
        return self.reduce_only or isinstance(self.size, ClosePosition) or self.purpose in ("exit", "flatten")

    @property
    def direction(self) -> int:
        """+1 for a buy, -1 for a sell."""
        return 1 if self.side == "buy" else -1

    def to_json(self) -> dict[str, Any]:
        size: dict[str, Any]
        if isinstance(self.size, Quantity):
            size = {"kind": "quantity", "units": self.size.units}
        elif isinstance(self.size, SizeAtFill):
            size = {
                "kind": "size_at_fill",
                "mode": self.size.mode,
                "value": self.size.value,
                "reference": None if math.isnan(self.size.reference) else self.size.reference,
            }
        else:
            size = {"kind": "close_position"}
        return {
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side,
            "type": self.type,
            "size": size,
            "purpose": self.purpose,
            "limit_price": self.limit_price,
            "stop_price": self.stop_price,
            "valid_bars": self.valid_bars,
            "reduce_only": self.reduce_only,
            "exit_rule": self.exit_rule,
            "trail": None
            if self.trail is None
            else {"distance": self.trail.distance, "fraction": self.trail.fraction},
            "protective": [
                {
                    "rule": leg.rule,
                    "kind": leg.kind,
                    "distance": leg.distance,
                    "fraction": leg.fraction,
                    "reward_ratio": leg.reward_ratio,
                }
                for leg in self.protective
            ],
            "parent_id": self.parent_id,
            "strategy_side": self.strategy_side,
            "signal_time": self.signal_time,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OrderSpec:
        raw = data["size"]
        size: Size
        if raw["kind"] == "quantity":
            size = Quantity(float(raw["units"]))
        elif raw["kind"] == "size_at_fill":
            reference = raw.get("reference")
            size = SizeAtFill(raw["mode"], float(raw["value"]), math.nan if reference is None else reference)
        else:
            size = ClosePosition()
        trail = data.get("trail")
        return cls(
            client_order_id=data["client_order_id"],
            symbol=data["symbol"],
            side=data["side"],
            type=data["type"],
            size=size,
            purpose=data["purpose"],
            limit_price=data.get("limit_price"),
            stop_price=data.get("stop_price"),
            valid_bars=data.get("valid_bars"),
            reduce_only=bool(data.get("reduce_only", False)),
            exit_rule=data.get("exit_rule"),
            trail=None if trail is None else Trail(trail.get("distance"), trail.get("fraction")),
            protective=tuple(ProtectiveLeg(**leg) for leg in data.get("protective", ())),
            parent_id=data.get("parent_id"),
            strategy_side=data.get("strategy_side"),
            signal_time=data.get("signal_time"),
        )


def _valid_price(value: float | None, protective_leg: bool) -> bool:
    return value is not None and math.isfinite(value) and (protective_leg or value > 0)
