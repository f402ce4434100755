"""Deployments: a confirmed strategy revision trading on a paper account, and everything around it.

Money-moving requests (create, start, a manual open, raising risk limits) only *propose*: they return
a confirmation (``confirmations.py``) and act when it is confirmed (``confirm``). Safety requests
(pause, stop, close, reduce, flatten, cancel an order, tightening limits) act at once. Every status
change is a recorded transition with its actor (``user`` through the API, ``model`` through MCP) and
reason, announced on the deployment's live stream. Manual actions are stored as intents the next
cycle carries out through the risk gate (``manual_actions``).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np

from packages.core.errors import AppError, Conflict, FieldError, NotFound, ValidationFailed
from packages.core.idempotency import IdempotencyKey
from packages.core.market_data.schemas import EARLIEST
from packages.core.principal import Principal
from packages.core.resources import Resources
from packages.core.strategies.repository import StrategyRepository
from packages.core.trading.confirmations import ConfirmationBook, Proposal
from packages.core.trading.events import RiskEvent, record_event
from packages.core.trading.ledger import account_state
from packages.core.trading.lifecycle import can_move, record_creation, record_transition
from packages.core.trading.readiness import check_readiness
from packages.core.trading.repository import (
    OPEN_ORDER_STATUSES,
    AccountRepository,
    AuditRepository,
    DeploymentRepository,
    KillSwitchRepository,
)
from packages.core.trading.schemas import (
    Actor,
    CancelOrderAction,
    CloseAction,
    ConfirmationRequired,
    ConfirmedOut,
    CreateDeploymentRequest,
    DeploymentList,
    DeploymentOut,
    FillPage,
    FlattenAction,
    ManualActionOut,
    ManualActionPage,
    ManualActionRequest,
    OpenAction,
    OrderPage,
    PnlSeriesOut,
    PositionPage,
    ReadinessOut,
    ReduceAction,
    RiskDecisionPage,
    RiskLimits,
    SignalPage,
    TransitionPage,
)
from packages.core.trading.views import (
    fill_out,
    kill_switch_out,
    manual_action_out,
    money,
    order_out,
    pnl_summary,
    position_out,
    risk_out,
    signal_out,
    summary_of,
    transition_out,
)
from packages.core.uow import UnitOfWork
from packages.domain.backtest._kernel import minmax_downsample
from packages.infra.db.models import (
    BrokerAccount,
    Confirmation,
    Deployment,
    ManualAction,
    Strategy,
    StrategyRevision,
)

Reconciler = Callable[[UnitOfWork, Deployment], Awaitable[dict[str, Any]]]

_NUMERIC_LIMITS = (
    "max_position_notional",
    "max_symbol_exposure",
    "max_daily_loss",
    "max_drawdown",
    "max_orders_per_minute",
)


async def reconciliation_not_ready(uow: UnitOfWork, deployment: Deployment) -> dict[str, Any]:
    """The reconciliation this server offers until the runtime's is plugged into ``DeploymentService``."""
    raise Conflict(
        "Reconciliation with the backtest is not available until the deployment has run; start it and "
        "ask again once it has traded.",
        extra={"deployment_id": str(deployment.id), "cycles": deployment.cycles},
    )


def _decimal_text(value: Decimal) -> str:
    """A decimal as canonical text (10000, not 1E+4 or 10000.0000000000)."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _percent(value: float) -> str:
    return f"{value * 100:g}%"


def describe_limits(limits: RiskLimits, currency: str) -> str:
    parts = []
    if limits.max_daily_loss is not None:
        parts.append(f"daily loss at most {_percent(limits.max_daily_loss)}")
    if limits.max_drawdown is not None:
        parts.append(f"drawdown at most {_percent(limits.max_drawdown)}")
    if limits.max_symbol_exposure is not None:
        parts.append(f"at most {_percent(limits.max_symbol_exposure)} of equity per symbol")
    if limits.max_position_notional is not None:
        parts.append(f"positions up to {money(limits.max_position_notional, currency)}")
    if limits.max_orders_per_minute is not None:
        parts.append(f"at most {limits.max_orders_per_minute} orders a minute")
    parts.append(
        "every symbol of the strategy"
        if limits.allowed_symbols is None
        else "only " + ", ".join(limits.allowed_symbols)
    )
    return "; ".join(parts)


def raised_limits(old: RiskLimits, new: RiskLimits, symbols: list[str]) -> list[str]:
    """The limits ``new`` loosens (a higher number, no limit instead of one, more symbols)."""
    raised = []
    for name in _NUMERIC_LIMITS:
        before, after = getattr(old, name), getattr(new, name)
        if before is not None and (after is None or after > before):
            raised.append(name)
    before_symbols = {s.upper() for s in (old.allowed_symbols or symbols)}
    after_symbols = {s.upper() for s in (new.allowed_symbols or symbols)}
    if not after_symbols <= before_symbols:
        raised.append("allowed_symbols")
    return raised


def _normalised_limits(limits: RiskLimits) -> RiskLimits:
    if limits.allowed_symbols is None:
        return limits
    unique = list(dict.fromkeys(symbol.upper() for symbol in limits.allowed_symbols))
    return limits.model_copy(update={"allowed_symbols": unique})


def _refuse_untradable(limits: RiskLimits, symbols: list[str], pointer: str) -> None:
    """Allowed symbols that leave the strategy nothing to trade can never be right."""
    if limits.allowed_symbols is not None and not set(limits.allowed_symbols) & set(symbols):
        message = (
            f"None of the allowed symbols ({', '.join(limits.allowed_symbols)}) is traded by the strategy "
            f"({', '.join(symbols)}): nothing could ever trade."
        )
        raise ValidationFailed(
            message, errors=[FieldError("no_tradable_symbol", pointer, "allow a symbol of the strategy")]
        )


def _clock_text(clock: str, replay_start: datetime | None, replay_speed: float | None) -> str:
    if clock == "replay" and replay_start is not None:
        return f"the replay clock from {replay_start:%Y-%m-%d %H:%M} UTC at {replay_speed:g}x"
    return "the realtime clock (each new bar as it closes)"


@dataclass(frozen=True)
class _CreatePlan:
    proposal: Proposal
    strategy: Strategy
    revision: StrategyRevision
    account: BrokerAccount
    body: CreateDeploymentRequest


class DeploymentService:
    def __init__(
        self,
        uow: UnitOfWork,
        principal: Principal,
        resources: Resources,
        *,
        actor: Actor = "user",
        reconciler: Reconciler = reconciliation_not_ready,
    ) -> None:
        self.uow = uow
        self.principal = principal
        self.settings = resources.settings
        self.actor = actor
        self.reconciler = reconciler
        self.repo = DeploymentRepository(uow.session, principal.user_id)
        self.accounts = AccountRepository(uow.session, principal.user_id)
        self.strategies = StrategyRepository(uow.session, principal.user_id)
        self.audit = AuditRepository(uow.session)
        self.book = ConfirmationBook(uow, principal, resources.settings, actor=actor)

    def _reason(self, verb: str, reason: str | None) -> str:
        who = f"the {self.actor}"
        if self.actor == "model" and self.principal.session_id is not None:
            who += f" (chat session {self.principal.session_id})"
        return f"{verb} by {who}" + (f": {reason}" if reason else "")

    # --- reading ---------------------------------------------------------------------------------

    async def list(self, *, limit: int, cursor: str | None, status: str | None) -> DeploymentList:
        page = await self.repo.page(limit=limit, cursor=cursor, status=status)
        return DeploymentList(items=[summary_of(d) for d in page.rows], next_cursor=page.next_cursor)

    async def get(self, deployment_id: uuid.UUID) -> DeploymentOut:
        return await self._out(await self.repo.get(deployment_id))

    async def readiness(self, deployment_id: uuid.UUID) -> ReadinessOut:
        deployment = await self.repo.get(deployment_id)
        return await check_readiness(self.uow, self.principal, self.settings, deployment)

    async def orders(
        self, deployment_id: uuid.UUID, *, limit: int, cursor: str | None, status: str | None
    ) -> OrderPage:
        await self.repo.get(deployment_id)
        page = await self.repo.orders(deployment_id, cursor=cursor, limit=limit, status=status)
        return OrderPage(items=[order_out(o) for o in page.rows], next_cursor=page.next_cursor)

    async def fills(self, deployment_id: uuid.UUID, *, limit: int, cursor: str | None) -> FillPage:
        await self.repo.get(deployment_id)
        page = await self.repo.fills(deployment_id, cursor=cursor, limit=limit)
        return FillPage(items=[fill_out(f) for f in page.rows], next_cursor=page.next_cursor)

    async def positions(
        self, deployment_id: uuid.UUID, *, limit: int, cursor: str | None, open_only: bool
    ) -> PositionPage:
        await self.repo.get(deployment_id)
        page = await self.repo.positions(deployment_id, cursor=cursor, limit=limit, open_only=open_only)
        return PositionPage(items=[position_out(p) for p in page.rows], next_cursor=page.next_cursor)

    async def signals(self, deployment_id: uuid.UUID, *, limit: int, cursor: str | None) -> SignalPage:
        await self.repo.get(deployment_id)
        page = await self.repo.signals(deployment_id, cursor=cursor, limit=limit)
        return SignalPage(items=[signal_out(s) for s in page.rows], next_cursor=page.next_cursor)

    async def risk_log(self, deployment_id: uuid.UUID, *, limit: int, cursor: str | None) -> RiskDecisionPage:
        await self.repo.get(deployment_id)
        page = await self.repo.risk_log(deployment_id, cursor=cursor, limit=limit)
        return RiskDecisionPage(items=[risk_out(r) for r in page.rows], next_cursor=page.next_cursor)

    async def transitions(
        self, deployment_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> TransitionPage:
        await self.repo.get(deployment_id)
        page = await self.repo.transitions(deployment_id, cursor=cursor, limit=limit)
        return TransitionPage(items=[transition_out(t) for t in page.rows], next_cursor=page.next_cursor)

    async def manual_actions(
        self, deployment_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> ManualActionPage:
        await self.repo.get(deployment_id)
        page = await self.repo.manual_actions(deployment_id, cursor=cursor, limit=limit)
        return ManualActionPage(items=[manual_action_out(a) for a in page.rows], next_cursor=page.next_cursor)

    async def pnl(
        self, deployment_id: uuid.UUID, *, start: datetime | None, end: datetime | None, points: int | None
    ) -> PnlSeriesOut:
        """Equity and drawdown for a chart: at most ``points`` per series (every bucket's extremes of
        either series kept, on one time axis)."""
        deployment = await self.repo.get(deployment_id)
        rows = await self.repo.pnl_series(deployment_id, start, end)
        limit = points or self.settings.trading.pnl_chart_points
        equity = np.array([float(e) for _, e, _ in rows], dtype=np.float64)
        drawdown = np.array([d for _, _, d in rows], dtype=np.float64)
        if len(rows) > limit:
            # Half the budget to each series' extremes; their union is at most ``limit`` points.
            keep = np.union1d(minmax_downsample(equity, limit // 2), minmax_downsample(drawdown, limit // 2))
        else:
            keep = np.arange(len(rows))
        latest = await self.repo.latest_pnl(deployment_id)
        return PnlSeriesOut(
            deployment_id=deployment_id,
            capital=float(deployment.capital),
            points=int(keep.shape[0]),
            snapshots=len(rows),
            time=[rows[i][0] for i in keep.tolist()],
            equity=equity[keep].tolist(),
            drawdown=drawdown[keep].tolist(),
            latest=None if latest is None else pnl_summary(latest, deployment.capital),
        )

    async def reconciliation(self, deployment_id: uuid.UUID) -> dict[str, Any]:
        deployment = await self.repo.get(deployment_id)
        return await self.reconciler(self.uow, deployment)

    # --- create (confirmed) ----------------------------------------------------------------------

    async def propose_create(self, body: CreateDeploymentRequest) -> Proposal:
        """The exact deployment ``body`` would create, checked; nothing is written."""
        return (await self._plan_create(body)).proposal

    async def request_create(
        self, body: CreateDeploymentRequest, idempotency_key: IdempotencyKey | None
    ) -> ConfirmationRequired | ConfirmedOut:
        plan = await self._plan_create(body)
        return await self._issue(plan.proposal, idempotency_key)

    async def _plan_create(self, body: CreateDeploymentRequest) -> _CreatePlan:
        strategy = await self.strategies.find(body.strategy_id)
        if strategy is None:
            raise ValidationFailed(
                f"No strategy with id {body.strategy_id}.",
                errors=[FieldError("not_found", "/strategy_id", "no such strategy of yours")],
            )
        version = body.version or strategy.current_version
        revision = await self.strategies.revision(strategy.id, version)
        if revision is None:
            raise ValidationFailed(
                f"'{strategy.name}' has no version {version}.",
                errors=[
                    FieldError("not_found", "/version", f"versions run from 1 to {strategy.current_version}")
                ],
            )
        account = await self._account_for(body.account_id)
        document = revision.document
        universe = document.get("universe") or {}
        market = str(universe.get("market"))
        symbols = [str(s).upper() for s in universe.get("symbols") or []]
        timeframe = str(document.get("timeframe"))
        replay_start, replay_speed = self._clock(body)
        limits = _normalised_limits(body.risk_limits)
        _refuse_untradable(limits, symbols, "/risk_limits/allowed_symbols")
        cash = Decimal(repr((await account_state(self.accounts, account.id)).cash))
        free = cash - await self.accounts.allocated_capital(account.id)
        if body.capital > free:
            free = max(free, Decimal(0))
            raise ValidationFailed(
                f"The account '{account.name}' has {money(free, account.currency)} free; the capital cannot "
                "be more.",
                errors=[FieldError("insufficient_cash", "/capital", f"at most {_decimal_text(free)}")],
            )
        await self._refuse_over_cap()
        name = body.name or f"{strategy.name} v{version}"[:200]
        payload = {
            "strategy_id": str(strategy.id),
            "strategy_version": version,
            "account_id": str(account.id),
            "name": name,
            "capital": _decimal_text(body.capital),
            "risk_limits": limits.model_dump(mode="json"),
            "clock": body.clock,
            "replay_start": _iso(replay_start),
            "replay_speed": replay_speed,
        }
        summary = (
            f"Create the paper deployment '{name}': '{strategy.name}' version {version} ({market} "
            f"{', '.join(symbols)}, {timeframe} bars) on the account '{account.name}' with "
            f"{money(body.capital, account.currency)} of capital, on {_clock_text(body.clock, replay_start, replay_speed)}. "
            f"Risk limits: {describe_limits(limits, account.currency)}. It trades only once it is started."
        )
        details = {
            **payload,
            "strategy_name": strategy.name,
            "strategy_status": strategy.status,
            "account_name": account.name,
            "currency": account.currency,
            "market": market,
            "symbols": symbols,
            "timeframe": timeframe,
            "account_free_cash": float(free),
        }
        proposal = Proposal(action="create_deployment", payload=payload, summary=summary, details=details)
        return _CreatePlan(proposal, strategy, revision, account, body)

    def _clock(self, body: CreateDeploymentRequest) -> tuple[datetime | None, float | None]:
        if body.clock == "realtime":
            for field in ("replay_start", "replay_speed"):
                if getattr(body, field) is not None:
                    raise ValidationFailed(
                        f"{field} is for the replay clock only.",
                        errors=[
                            FieldError("replay_only", f"/{field}", "remove it, or set clock to 'replay'")
                        ],
                    )
            return None, None
        if body.replay_start is None:
            raise ValidationFailed(
                "A replay deployment needs replay_start: the historical moment its clock starts from.",
                errors=[FieldError("missing", "/replay_start", "e.g. 2024-01-02T00:00:00Z")],
            )
        start = _utc(body.replay_start)
        if start < EARLIEST:
            raise ValidationFailed(
                f"replay_start must be after {EARLIEST:%Y-%m-%d}.",
                errors=[FieldError("too_early", "/replay_start", "choose a moment inside your market data")],
            )
        if start >= datetime.now(UTC):
            raise ValidationFailed(
                "replay_start must lie in the past: the replay clock walks through stored history.",
                errors=[FieldError("not_in_the_past", "/replay_start", "choose a historical moment")],
            )
        speed = body.replay_speed or self.settings.market_data.replay_speed
        ceiling = self.settings.trading.max_replay_speed
        if speed > ceiling:
            raise ValidationFailed(
                f"replay_speed may be at most {ceiling:g} simulated seconds per second on this server.",
                errors=[FieldError("too_fast", "/replay_speed", f"at most {ceiling:g}")],
            )
        return start, float(speed)

    async def _account_for(self, account_id: uuid.UUID | None) -> BrokerAccount:
        if account_id is None:
            account = await self.accounts.default()
            if account is None:
                raise ValidationFailed(
                    "You have no default account: create a paper account first (POST /api/v1/broker-accounts).",
                    errors=[FieldError("no_default_account", "/account_id", "name an account or create one")],
                )
        else:
            found = await self.accounts.find(account_id)
            if found is None:
                raise ValidationFailed(
                    f"No broker account with id {account_id}.",
                    errors=[FieldError("not_found", "/account_id", "no such account of yours")],
                )
            account = found
        if account.status != "active":
            raise ValidationFailed(
                f"The account '{account.name}' is deactivated.",
                errors=[FieldError("account_inactive", "/account_id", "deploy on an active account")],
            )
        if account.kind != "paper":
            raise ValidationFailed(
                "Only paper accounts can run deployments for now.",
                errors=[FieldError("live_not_available", "/account_id", "use a paper account")],
            )
        return account

    async def _refuse_over_cap(self) -> None:
        await self.repo.lock_owner()
        limit = self.settings.trading.max_deployments_per_user
        running = await self.repo.count_not_stopped()
        if running >= limit:
            raise Conflict(
                f"You have {running} deployments that are not stopped (at most {limit}); stop one first.",
                extra={"limit": limit},
            )

    async def _run_create(self, row: Confirmation, via: str) -> ConfirmedOut:
        payload = row.payload
        body = CreateDeploymentRequest(
            strategy_id=uuid.UUID(payload["strategy_id"]),
            version=payload["strategy_version"],
            account_id=uuid.UUID(payload["account_id"]),
            name=payload["name"],
            capital=Decimal(payload["capital"]),
            risk_limits=RiskLimits.model_validate(payload["risk_limits"]),
            clock=payload["clock"],
            replay_start=None
            if payload["replay_start"] is None
            else datetime.fromisoformat(payload["replay_start"]),
            replay_speed=payload["replay_speed"],
        )
        plan = await self._recheck(row, self._plan_create(body))
        if plan.proposal.action_hash != row.action_hash:
            raise await self.book.refuse_changed(
                row, plan.proposal.action_hash, "The strategy or account changed since the preview."
            )
        document = plan.revision.document
        universe = document.get("universe") or {}
        deployment = Deployment(
            user_id=self.principal.user_id,
            strategy_id=plan.strategy.id,
            strategy_version=plan.revision.version,
            document=document,
            account_id=plan.account.id,
            name=payload["name"],
            market=str(universe.get("market")),
            symbols=[str(s).upper() for s in universe.get("symbols") or []],
            timeframe=str(document.get("timeframe")),
            capital=body.capital,
            risk_limits=payload["risk_limits"],
            clock=body.clock,
            replay_start=body.replay_start,
            replay_speed=payload["replay_speed"],
            status="pending",
            trading_state="active",
        )
        await self.repo.add(deployment)
        await record_creation(
            self.uow, deployment, actor=self.actor, reason=self._reason("created on confirmation", None)
        )
        await self.repo.save_changes(deployment)
        await self._audit(deployment.id, "create", {"confirmation_id": str(row.id)})
        return await self._complete(row, {"deployment_id": str(deployment.id)}, via, deployment=deployment)

    # --- start (confirmed) -----------------------------------------------------------------------

    async def propose_start(self, deployment_id: uuid.UUID) -> Proposal:
        deployment = await self.repo.get(deployment_id)
        return await self._start_proposal(deployment)

    async def request_start(self, deployment_id: uuid.UUID) -> ConfirmationRequired | ConfirmedOut:
        """A confirmation to start (or resume) the deployment, if it is ready; 409 with what is
        missing when it is not."""
        deployment = await self.repo.get(deployment_id)
        await self._require_ready(deployment)
        return await self._issue(await self._start_proposal(deployment), None)

    async def _start_proposal(self, deployment: Deployment) -> Proposal:
        if not can_move(deployment.status, "active") or deployment.status == "error":
            raise Conflict(
                f"Only a pending or paused deployment can start; this one is {deployment.status}.",
                extra={"status": deployment.status},
            )
        account = await self.accounts.get(deployment.account_id)
        limits = RiskLimits.model_validate(deployment.risk_limits)
        payload = {
            "deployment_id": str(deployment.id),
            "from_status": deployment.status,
            "strategy_version": deployment.strategy_version,
            "account_id": str(deployment.account_id),
            "capital": _decimal_text(deployment.capital),
            "risk_limits": deployment.risk_limits,
            "clock": deployment.clock,
            "replay_start": _iso(deployment.replay_start),
            "replay_speed": deployment.replay_speed,
        }
        verb = "Resume" if deployment.status == "paused" else "Start"
        summary = (
            f"{verb} the paper deployment '{deployment.name}' ({deployment.status} -> active): it trades "
            f"{deployment.market} {', '.join(deployment.symbols)} on {deployment.timeframe} bars with "
            f"{money(deployment.capital, account.currency)} of the account '{account.name}', on "
            f"{_clock_text(deployment.clock, deployment.replay_start, deployment.replay_speed)}, within these "
            f"limits: {describe_limits(limits, account.currency)}."
        )
        details = {
            **payload,
            "name": deployment.name,
            "account_name": account.name,
            "currency": account.currency,
        }
        return Proposal(action="start_deployment", payload=payload, summary=summary, details=details)

    async def _require_ready(self, deployment: Deployment) -> None:
        readiness = await check_readiness(self.uow, self.principal, self.settings, deployment)
        if not readiness.ready:
            raise Conflict(
                "The deployment is not ready to start: " + " ".join(readiness.problems),
                extra={"problems": readiness.problems},
            )

    async def _run_start(self, row: Confirmation, via: str) -> ConfirmedOut:
        deployment = await self.repo.get(uuid.UUID(row.payload["deployment_id"]), for_update=True)
        proposal = await self._recheck(row, self._start_proposal(deployment))
        if proposal.action_hash != row.action_hash:
            raise await self.book.refuse_changed(
                row,
                proposal.action_hash,
                f"The deployment changed since the preview (it is {deployment.status}).",
            )
        await self._recheck(row, self._require_ready(deployment))
        await record_transition(
            self.uow,
            deployment,
            "status",
            "active",
            actor=self.actor,
            reason=self._reason("started on confirmation", None),
        )
        await self.repo.save_changes(deployment)
        return await self._complete(row, {"deployment_id": str(deployment.id)}, via, deployment=deployment)

    # --- pause and stop (at once) ----------------------------------------------------------------

    async def pause(self, deployment_id: uuid.UUID, reason: str | None) -> DeploymentOut:
        deployment = await self.repo.get(deployment_id, for_update=True)
        if deployment.status != "paused":
            if deployment.status != "active":
                raise Conflict(
                    f"Only an active deployment can be paused; this one is {deployment.status}.",
                    extra={"status": deployment.status},
                )
            await record_transition(
                self.uow,
                deployment,
                "status",
                "paused",
                actor=self.actor,
                reason=self._reason("paused", reason),
            )
            await self.repo.save_changes(deployment)
        return await self._out(deployment)

    async def stop(self, deployment_id: uuid.UUID, reason: str | None) -> DeploymentOut:
        """Stop for good: no more cycles; pending manual actions are canceled."""
        deployment = await self.repo.get(deployment_id, for_update=True)
        if deployment.status != "stopped":
            await record_transition(
                self.uow,
                deployment,
                "status",
                "stopped",
                actor=self.actor,
                reason=self._reason("stopped", reason),
            )
            await self.repo.cancel_pending_manual_actions(deployment.id, "the deployment was stopped")
            await self.repo.save_changes(deployment)
        return await self._out(deployment)

    # --- manual actions --------------------------------------------------------------------------

    async def manual_action(
        self, deployment_id: uuid.UUID, body: ManualActionRequest
    ) -> ManualActionOut | ConfirmationRequired | ConfirmedOut:
        """Open needs confirmation; close, reduce, flatten and cancel are recorded at once for the
        next cycle, which carries them out through the risk gate."""
        deployment = await self.repo.get(deployment_id, for_update=True)
        if isinstance(body, OpenAction):
            return await self._issue(await self._open_proposal(deployment, body), None)
        if deployment.status not in ("active", "paused"):
            raise Conflict(
                f"The deployment is {deployment.status}: no cycle will run to carry the action out.",
                extra={"status": deployment.status},
            )
        params: dict[str, Any]
        if isinstance(body, CloseAction | ReduceAction):
            symbol = await self._held_symbol(deployment, body.symbol)
            params = {"symbol": symbol}
            if isinstance(body, ReduceAction):
                if (body.fraction is None) == (body.quantity is None):
                    raise ValidationFailed(
                        "Reduce by a fraction of the position or by a quantity: give exactly one.",
                        errors=[FieldError("one_of", "/fraction", "give fraction or quantity")],
                    )
                if body.fraction is not None:
                    params["fraction"] = body.fraction
                if body.quantity is not None:
                    params["quantity"] = _decimal_text(body.quantity)
        elif isinstance(body, CancelOrderAction):
            order = await self.repo.order(deployment.id, body.order_id)
            if order is None:
                raise NotFound(f"No order {body.order_id} in this deployment.")
            if order.status not in OPEN_ORDER_STATUSES:
                raise Conflict(f"The order is {order.status}; only an open order can be canceled.")
            params = {"order_id": str(order.id), "client_order_id": order.client_order_id}
        else:
            assert isinstance(body, FlattenAction)
            params = {}
        action = ManualAction(
            user_id=self.principal.user_id,
            deployment_id=deployment.id,
            action=body.action,
            params=params,
            status="pending",
            actor=self.actor,
            reason=self._reason(body.action.replace("_", " "), body.reason)[:500],
        )
        await self.repo.add_manual_action(action)
        await self._audit(
            deployment.id, f"manual_{body.action}", {"manual_action_id": str(action.id), **params}
        )
        return manual_action_out(action)

    async def propose_manual_open(self, deployment_id: uuid.UUID, body: OpenAction) -> Proposal:
        return await self._open_proposal(await self.repo.get(deployment_id), body)

    async def _open_proposal(self, deployment: Deployment, body: OpenAction) -> Proposal:
        if deployment.status != "active":
            raise Conflict(
                f"A position can only be opened in an active deployment; this one is {deployment.status}.",
                extra={"status": deployment.status},
            )
        symbol = self._tradable_symbol(deployment, body.symbol)
        if (body.quantity is None) == (body.notional is None):
            raise ValidationFailed(
                "Give the size as a quantity or as a notional value: exactly one.",
                errors=[FieldError("one_of", "/quantity", "give quantity or notional")],
            )
        if (body.order_type == "limit") != (body.limit_price is not None):
            raise ValidationFailed(
                "A limit order needs limit_price, and only a limit order takes one.",
                errors=[FieldError("limit_price", "/limit_price", "set it for a limit order only")],
            )
        account = await self.accounts.get(deployment.account_id)
        payload: dict[str, Any] = {
            "deployment_id": str(deployment.id),
            "symbol": symbol,
            "direction": body.direction,
            "order_type": body.order_type,
            "quantity": None if body.quantity is None else _decimal_text(body.quantity),
            "notional": None if body.notional is None else _decimal_text(body.notional),
            "limit_price": None if body.limit_price is None else _decimal_text(body.limit_price),
            "reason": body.reason,
        }
        size = (
            f"{payload['quantity']} {symbol}"
            if body.quantity is not None
            else f"{money(body.notional or 0, account.currency)} of {symbol}"
        )
        price = f" at a limit of {payload['limit_price']}" if body.limit_price is not None else " at market"
        summary = (
            f"{'Buy' if body.direction == 'long' else 'Sell short'} {size}{price} in the paper deployment '{deployment.name}' (opens or "
            "increases a position), at its next cycle and only if its risk limits allow it."
        )
        return Proposal(
            action="manual_open",
            payload=payload,
            summary=summary,
            details={**payload, "name": deployment.name},
        )

    async def _run_manual_open(self, row: Confirmation, via: str) -> ConfirmedOut:
        deployment = await self.repo.get(uuid.UUID(row.payload["deployment_id"]), for_update=True)
        payload = row.payload
        body = OpenAction(
            action="open",
            symbol=payload["symbol"],
            direction=payload["direction"],
            order_type=payload["order_type"],
            quantity=None if payload["quantity"] is None else Decimal(payload["quantity"]),
            notional=None if payload["notional"] is None else Decimal(payload["notional"]),
            limit_price=None if payload["limit_price"] is None else Decimal(payload["limit_price"]),
            reason=payload["reason"],
        )
        proposal = await self._recheck(row, self._open_proposal(deployment, body))
        if proposal.action_hash != row.action_hash:
            raise await self.book.refuse_changed(
                row, proposal.action_hash, "The deployment changed since the preview."
            )
        params = {k: v for k, v in payload.items() if k not in ("deployment_id", "reason") and v is not None}
        action = ManualAction(
            user_id=self.principal.user_id,
            deployment_id=deployment.id,
            action="open",
            params=params,
            status="pending",
            actor=self.actor,
            reason=self._reason("open on confirmation", body.reason)[:500],
            confirmation_id=row.id,
        )
        await self.repo.add_manual_action(action)
        await self._audit(deployment.id, "manual_open", {"manual_action_id": str(action.id), **params})
        return await self._complete(row, {"manual_action_id": str(action.id)}, via, manual_action=action)

    def _tradable_symbol(self, deployment: Deployment, symbol: str) -> str:
        wanted = symbol.upper()
        limits = RiskLimits.model_validate(deployment.risk_limits)
        allowed = (
            deployment.symbols
            if limits.allowed_symbols is None
            else [s for s in deployment.symbols if s in {a.upper() for a in limits.allowed_symbols}]
        )
        if wanted not in allowed:
            raise ValidationFailed(
                f"{wanted} is not traded by this deployment (it may trade {', '.join(allowed) or 'nothing'}).",
                errors=[FieldError("symbol_not_traded", "/symbol", "use a symbol of the deployment")],
            )
        return wanted

    async def _held_symbol(self, deployment: Deployment, symbol: str) -> str:
        wanted = symbol.upper()
        position = await self.repo.position(deployment.id, wanted)
        if position is None or position.quantity == 0:
            raise Conflict(f"The deployment holds no position in {wanted}.", extra={"symbol": wanted})
        return wanted

    # --- risk limits -----------------------------------------------------------------------------

    async def update_risk_limits(
        self, deployment_id: uuid.UUID, limits: RiskLimits
    ) -> DeploymentOut | ConfirmationRequired | ConfirmedOut:
        """Tighter limits apply at once; raising any needs the user's confirmation."""
        deployment = await self.repo.get(deployment_id, for_update=True)
        proposal = await self._limits_proposal(deployment, limits)
        if proposal is not None:
            return await self._issue(proposal, None)
        await self._apply_limits(deployment, _normalised_limits(limits), "tightened")
        return await self._out(deployment)

    async def propose_risk_limits(self, deployment_id: uuid.UUID, limits: RiskLimits) -> Proposal | None:
        """The confirmation raising limits needs; None when ``limits`` only tighten them."""
        return await self._limits_proposal(await self.repo.get(deployment_id), limits)

    async def _limits_proposal(self, deployment: Deployment, limits: RiskLimits) -> Proposal | None:
        if deployment.status == "stopped":
            raise Conflict("The deployment is stopped; its limits no longer matter.")
        limits = _normalised_limits(limits)
        _refuse_untradable(limits, deployment.symbols, "/allowed_symbols")
        current = RiskLimits.model_validate(deployment.risk_limits)
        raised = raised_limits(current, limits, deployment.symbols)
        if not raised:
            return None
        account = await self.accounts.get(deployment.account_id)
        payload = {
            "deployment_id": str(deployment.id),
            "from": current.model_dump(mode="json"),
            "to": limits.model_dump(mode="json"),
        }
        summary = (
            f"Raise the risk limits of the paper deployment '{deployment.name}' ({', '.join(raised)}): from "
            f"{describe_limits(current, account.currency)} to {describe_limits(limits, account.currency)}."
        )
        return Proposal(
            action="raise_risk_limits",
            payload=payload,
            summary=summary,
            details={**payload, "raised": raised, "name": deployment.name},
        )

    async def _run_limits(self, row: Confirmation, via: str) -> ConfirmedOut:
        deployment = await self.repo.get(uuid.UUID(row.payload["deployment_id"]), for_update=True)
        limits = RiskLimits.model_validate(row.payload["to"])
        proposal = await self._recheck(row, self._limits_proposal(deployment, limits))
        if proposal is None or proposal.action_hash != row.action_hash:
            current = "" if proposal is None else proposal.action_hash
            raise await self.book.refuse_changed(
                row, current, "The deployment's limits changed since the preview."
            )
        await self._apply_limits(deployment, limits, "raised on confirmation")
        return await self._complete(row, {"deployment_id": str(deployment.id)}, via, deployment=deployment)

    async def _apply_limits(self, deployment: Deployment, limits: RiskLimits, verb: str) -> None:
        before = deployment.risk_limits
        deployment.risk_limits = limits.model_dump(mode="json")
        await self._audit(deployment.id, "risk_limits", {"from": before, "to": deployment.risk_limits})
        account = await self.accounts.get(deployment.account_id)
        await record_event(
            self.uow,
            deployment,
            "risk",
            RiskEvent(
                rule="risk_limits",
                allowed=True,
                message=f"Risk limits {verb}: {describe_limits(limits, account.currency)}.",
                compared={"from": before, "to": deployment.risk_limits},
            ),
        )
        await self.repo.save_changes(deployment)

    # --- confirmation ----------------------------------------------------------------------------

    async def confirm(self, token: str, expected_hash: str | None, *, via: str = "api") -> ConfirmedOut:
        """Run the action ``token`` confirms, once."""
        row = await self.book.claim(token, expected_hash)
        runners = {
            "create_deployment": self._run_create,
            "start_deployment": self._run_start,
            "manual_open": self._run_manual_open,
            "raise_risk_limits": self._run_limits,
        }
        return await runners[row.action](row, via)

    async def _issue(
        self, proposal: Proposal, idempotency_key: IdempotencyKey | None
    ) -> ConfirmationRequired | ConfirmedOut:
        issued = await self.book.issue(proposal, "mcp" if self.actor == "model" else "api", idempotency_key)
        if isinstance(issued, ConfirmationRequired):
            return issued
        return await self._replayed(issued)

    async def _replayed(self, row: Confirmation) -> ConfirmedOut:
        """What an already confirmed action did (a retried request with its Idempotency-Key)."""
        result = row.result or {}
        assert row.used_at is not None
        out = ConfirmedOut(confirmation_id=row.id, action=row.action, confirmed_at=row.used_at)
        if "deployment_id" in result:
            out.deployment = await self.get(uuid.UUID(result["deployment_id"]))
        return out

    async def _recheck[T](self, row: Confirmation, check: Awaitable[T]) -> T:
        """``check`` (the action recomputed from the current state); its refusal is audited."""
        try:
            return await check
        except AppError as exc:
            await self.book.refuse(row, exc.code, {"detail": exc.detail})
            raise

    async def _complete(
        self,
        row: Confirmation,
        result: dict[str, Any],
        via: str,
        *,
        deployment: Deployment | None = None,
        manual_action: ManualAction | None = None,
    ) -> ConfirmedOut:
        confirmed_at = await self.book.complete(row, result, via)
        return ConfirmedOut(
            confirmation_id=row.id,
            action=row.action,
            confirmed_at=confirmed_at,
            deployment=None if deployment is None else await self._out(deployment),
            manual_action=None if manual_action is None else manual_action_out(manual_action),
        )

    # --- helpers ---------------------------------------------------------------------------------

    async def _out(self, deployment: Deployment) -> DeploymentOut:
        latest = await self.repo.latest_pnl(deployment.id)
        switches = await KillSwitchRepository(self.uow.session).in_force_for_deployment(deployment)
        return DeploymentOut(
            **summary_of(deployment).model_dump(),
            risk_limits=RiskLimits.model_validate(deployment.risk_limits),
            error=deployment.error,
            started_at=deployment.started_at,
            stopped_at=deployment.stopped_at,
            last_event_seq=deployment.events,
            pnl=None if latest is None else pnl_summary(latest, deployment.capital),
            kill_switches=[kill_switch_out(s) for s in switches],
            pending_manual_actions=await self.repo.count_pending_manual_actions(deployment.id),
        )

    async def _audit(self, deployment_id: uuid.UUID, action: str, details: dict[str, Any]) -> None:
        session = self.principal.session_id
        await self.audit.add(
            user_id=self.principal.user_id,
            actor=self.actor,
            subject="deployment",
            subject_id=deployment_id,
            action=action,
            details={**details, **({"chat_session_id": str(session)} if session else {})},
        )
