"""An account's balances are the replay of its ledger entries (the domain's ``ledger.replay``)."""

from __future__ import annotations

import uuid

from packages.core.market_data.universe import to_ns
from packages.core.trading.repository import AccountRepository
from packages.domain.trading import ledger
from packages.infra.db.models import LedgerEntry


def _entry(row: LedgerEntry) -> ledger.LedgerEntry:
    at = to_ns(row.at)
    assert at is not None
    return ledger.LedgerEntry(
        kind=row.kind,  # type: ignore[arg-type]
        at=at,
        cash=float(row.cash),
        symbol=row.symbol,
        quantity=float(row.quantity),
        price=None if row.price is None else float(row.price),
        fee=float(row.fee),
        reference=None if row.fill_id is None else str(row.fill_id),
        note=row.note,
    )


async def account_state(accounts: AccountRepository, account_id: uuid.UUID) -> ledger.LedgerState:
    """Cash, positions (average price, realized PnL), deposits and fees of one account."""
    return ledger.replay(_entry(row) for row in await accounts.ledger_entries(account_id))
