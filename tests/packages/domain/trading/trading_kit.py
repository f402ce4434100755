"""Builders shared by the paper-trading tests.

Bars here are hand-written price paths (synthetic, not market data); the real-data tests read the
backtest tests' loaders (``tests/packages/domain/backtest/kit.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from packages.domain.trading.broker import PaperAccount
from packages.domain.trading.costs import CostBook, CostModel
from packages.domain.trading.ledger import deposit
from packages.domain.trading.orders import OrderSpec, ProtectiveLeg, SizeAtFill
from packages.domain.trading.paper_broker import PaperBroker
from packages.domain.trading.simulated_broker import Fill, MarketBar

DAY = 86_400 * 1_000_000_000
T0 = 1_704_067_200 * 1_000_000_000  # 2024-01-01T00:00Z
NO_COSTS = CostBook()

Row = tuple[float, ...]


def costs(**fields: float | bool | None) -> CostBook:
    return CostBook(default=CostModel(**fields))  # type: ignore[arg-type]


def entry(
    order_id: str,
    *,
    symbol: str = "X",
    side: str = "buy",
    kind: str = "market",
    size: SizeAtFill | None = None,
    price: float | None = None,
    valid_bars: int | None = 1,
    legs: Sequence[ProtectiveLeg] = (),
) -> OrderSpec:
    """A strategy entry (fixed 10 units unless sized otherwise)."""
    return OrderSpec(
        client_order_id=order_id,
        symbol=symbol,
        side=side,  # type: ignore[arg-type]
        type=kind,  # type: ignore[arg-type]
        size=size or SizeAtFill("fixed_quantity", 10.0),
        purpose="entry",
        limit_price=price if kind == "limit" else None,
        stop_price=price if kind == "stop" else None,
        valid_bars=valid_bars,
        protective=tuple(legs),
        strategy_side="long" if side == "buy" else "short",
        signal_time=T0 - DAY,
    )


def paper_broker(
    cash: float = 10_000.0, book: CostBook = NO_COSTS, symbols: Sequence[str] = ("X",)
) -> PaperBroker:
    broker = PaperBroker(PaperAccount("paper-1"), symbols=symbols, costs=book)
    broker.record(deposit(T0 - DAY, cash))
    return broker


def play(
    broker: PaperBroker,
    rows: Sequence[Row | Mapping[str, Row]],
    orders: Mapping[int, Sequence[OrderSpec]] | None = None,
) -> list[Fill]:
    """Feed ``rows`` (one per bar; a mapping for several symbols) submitting ``orders[k]`` before bar k."""
    fills: list[Fill] = []
    for k, row in enumerate(rows):
        for spec in (orders or {}).get(k, ()):
            assert broker.submit(spec).status == "accepted"
        bars = row if isinstance(row, Mapping) else {"X": row}
        fills.extend(broker.on_bar(T0 + k * DAY, {s: MarketBar(*r) for s, r in bars.items()}).fills)
    return fills


CALM_ROWS: tuple[Row, ...] = ((100, 100.5, 99.5, 100),)
