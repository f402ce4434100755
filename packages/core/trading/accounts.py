"""Broker accounts: paper accounts on the built-in simulated broker, their ledger and balances.

An account's cash and positions are what its ledger says: opening one writes a ``deposit`` entry
with the starting cash, and every fill the runtime books adds an entry. The first account a user
opens becomes their default (at most one is, by a unique index); deactivating an account is refused
while a deployment on it is not stopped. Paper and live are different kinds, not a flag: a paper
account holds no endpoint and no credentials (a database constraint), and live accounts cannot be
created yet. Every change is audited.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from packages.core.errors import Conflict, FieldError, ValidationFailed
from packages.core.idempotency import IdempotencyKey, request_fingerprint
from packages.core.principal import Principal
from packages.core.resources import Resources
from packages.core.trading.ledger import account_state
from packages.core.trading.repository import AccountRepository, AuditRepository
from packages.core.trading.schemas import (
    AccountBalances,
    AccountDetail,
    AccountList,
    AccountOut,
    Actor,
    CostModel,
    CreateAccountRequest,
    MarketName,
    PositionBalance,
)
from packages.core.uow import UnitOfWork
from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.infra.db.models import BrokerAccount, LedgerEntry

SIMULATED_PROVIDER = "simulated"
MARKETS: tuple[MarketName, ...] = ("us_stocks", "crypto", "forex", "futures")


def cost_models_of(account: BrokerAccount) -> dict[MarketName, CostModel]:
    """The account's cost model per market (a market it never set uses the backtest's defaults)."""
    stored = (account.config or {}).get("cost_models") or {}
    return {market: CostModel.model_validate(stored.get(market, {})) for market in MARKETS}


def execution_assumptions(account: BrokerAccount, market: str, **overrides: Any) -> ExecutionAssumptions:
    """The backtest's execution assumptions the simulated broker fills ``market`` orders with."""
    return cost_models_of(account)[market].assumptions(**overrides)  # type: ignore[index]


def account_out(account: BrokerAccount) -> AccountOut:
    return AccountOut(
        id=account.id,
        kind=account.kind,
        provider=account.provider,
        name=account.name,
        status=account.status,
        is_default=account.is_default,
        currency=account.currency,
        starting_cash=float(account.starting_cash),
        cost_models=cost_models_of(account),
        created_at=account.created_at,
        updated_at=account.updated_at,
    )


class AccountService:
    def __init__(
        self, uow: UnitOfWork, principal: Principal, resources: Resources, *, actor: Actor = "user"
    ) -> None:
        self.uow = uow
        self.principal = principal
        self.settings = resources.settings
        self.actor = actor
        self.repo = AccountRepository(uow.session, principal.user_id)
        self.audit = AuditRepository(uow.session)

    # --- reading ---------------------------------------------------------------------------------

    async def list(self, *, limit: int, cursor: str | None) -> AccountList:
        page = await self.repo.page(limit=limit, cursor=cursor)
        return AccountList(items=[account_out(a) for a in page.rows], next_cursor=page.next_cursor)

    async def get(self, account_id: uuid.UUID) -> AccountDetail:
        return await self._detail(await self.repo.get(account_id))

    # --- writing ---------------------------------------------------------------------------------

    async def create(
        self, body: CreateAccountRequest, idempotency_key: IdempotencyKey | None
    ) -> tuple[AccountDetail, bool]:
        """A new paper account (the first one becomes the default) with its starting-cash deposit;
        for a retried Idempotency-Key with the same body, the account it made (``False``)."""
        self._refuse_live(body)
        fingerprint = request_fingerprint(body)
        await self.repo.lock_owner()
        if idempotency_key is not None:
            existing = await self.repo.by_idempotency_key(idempotency_key.value)
            if existing is not None:
                if existing.request_hash != fingerprint:
                    raise ValidationFailed(
                        "This Idempotency-Key was already used with a different request body.",
                        errors=[
                            FieldError(
                                "idempotency_key_reused",
                                idempotency_key.pointer,
                                "use a new key for a different request",
                            )
                        ],
                        extra={"account_id": str(existing.id)},
                    )
                return await self._detail(existing), False
        limit = self.settings.trading.max_accounts_per_user
        if await self.repo.count_active() >= limit:
            raise Conflict(f"You have {limit} active accounts, the most allowed; deactivate one first.")
        is_default = await self.repo.default() is None
        account = BrokerAccount(
            user_id=self.principal.user_id,
            kind="paper",
            provider=SIMULATED_PROVIDER,
            name=body.name,
            status="active",
            is_default=is_default,
            currency=body.currency,
            starting_cash=body.starting_cash,
            config={
                "cost_models": {
                    market: model.model_dump(mode="json")
                    for market, model in (body.cost_models or {}).items()
                }
            },
            idempotency_key=None if idempotency_key is None else idempotency_key.value,
            request_hash=fingerprint,
        )
        try:
            async with self.uow.session.begin_nested():
                await self.repo.add(account)
        except IntegrityError:
            raise Conflict(
                "Another request created an account with this key at the same time; retry."
            ) from None
        await self.repo.add_ledger_entry(
            LedgerEntry(
                user_id=self.principal.user_id,
                account_id=account.id,
                kind="deposit",
                quantity=0,
                cash=body.starting_cash,
                fee=0,
                note="starting cash",
                at=datetime.now(UTC),
            )
        )
        await self.repo.save_changes(account)
        await self._audit(
            account,
            "create",
            {
                "name": account.name,
                "starting_cash": str(body.starting_cash),
                "currency": account.currency,
                "is_default": is_default,
            },
        )
        return await self._detail(account), True

    async def set_default(self, account_id: uuid.UUID) -> AccountDetail:
        await self.repo.lock_owner()
        account = await self.repo.get(account_id, for_update=True)
        if account.status != "active":
            raise Conflict(
                f"The account '{account.name}' is deactivated; only an active account can be the default."
            )
        if not account.is_default:
            previous = await self.repo.default()
            await self.repo.clear_default()
            account.is_default = True
            await self.repo.save_changes(account)
            await self._audit(
                account, "set_default", {"previous_default": str(previous.id) if previous else None}
            )
        return await self._detail(account)

    async def deactivate(self, account_id: uuid.UUID, reason: str | None) -> AccountDetail:
        """Deactivate an account no running deployment uses; a default account passes the default to
        the user's oldest other active account, if any."""
        await self.repo.lock_owner()
        account = await self.repo.get(account_id, for_update=True)
        if account.status == "inactive":
            return await self._detail(account)
        running = await self.repo.running_deployments(account.id)
        if running:
            raise Conflict(
                f"{len(running)} deployment(s) on this account are not stopped; stop them first.",
                extra={"deployment_ids": [str(d) for d in running]},
            )
        account.status = "inactive"
        successor = None
        if account.is_default:
            account.is_default = False
            await self.repo.save_changes(account)
            successor = await self.repo.oldest_active_other_than(account.id)
            if successor is not None:
                successor.is_default = True
                await self.repo.save_changes(successor)
                await self._audit(successor, "set_default", {"previous_default": str(account.id)})
        await self.repo.save_changes(account)
        await self._audit(
            account,
            "deactivate",
            {"reason": reason, "new_default": str(successor.id) if successor else None},
        )
        return await self._detail(account)

    # --- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _refuse_live(body: CreateAccountRequest) -> None:
        if body.kind == "live":
            raise ValidationFailed(
                "Live broker accounts come in a later release; create a paper account (kind 'paper').",
                errors=[
                    FieldError("live_not_available", "/kind", "only 'paper' accounts can be created now")
                ],
            )
        for field in ("endpoint", "credentials"):
            if getattr(body, field) is not None:
                raise ValidationFailed(
                    f"A paper account has no {field}: it trades on the built-in simulated broker and can "
                    "never reach a live one.",
                    errors=[FieldError("paper_has_no_endpoint", f"/{field}", f"remove {field}")],
                )

    async def _detail(self, account: BrokerAccount) -> AccountDetail:
        state = await account_state(self.repo, account.id)
        allocated = float(await self.repo.allocated_capital(account.id))
        balances = AccountBalances(
            cash=state.cash,
            deposits=state.deposits,
            fees_paid=state.fees,
            realized_pnl=state.realized_pnl,
            allocated=allocated,
            available=state.cash - allocated,
            positions=[
                PositionBalance(
                    symbol=symbol,
                    quantity=position.quantity,
                    average_price=position.average_price,
                    realized_pnl=position.realized_pnl,
                )
                for symbol, position in state.positions.items()
                if position.quantity != 0
            ],
            entries=state.entries,
        )
        return AccountDetail(**account_out(account).model_dump(), balances=balances)

    async def _audit(self, account: BrokerAccount, action: str, details: dict[str, Any]) -> None:
        session = self.principal.session_id
        await self.audit.add(
            user_id=self.principal.user_id,
            actor=self.actor,
            subject="broker_account",
            subject_id=account.id,
            action=action,
            details={**details, **({"chat_session_id": str(session)} if session else {})},
        )
