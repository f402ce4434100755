"""Trading tools: paper accounts, deployments (create, start, pause, stop), their orders, fills,
positions and PnL, manual actions, risk limits and kill switches.

Money-moving tools (create_deployment, start_deployment, manual_action 'open', raising risk limits)
never act on the model's word. When the client can ask its user (MCP elicitation) the tool asks
"do exactly this?" and acts on a yes; otherwise, or on a no, it returns the preview with a
confirmation token that only the user can redeem, in the app (``POST /api/v1/confirmations/{token}``
with their own sign-in; an MCP token is refused there). Safety tools (pause, stop, close, reduce,
flatten, cancel an order, tighter limits, setting a kill switch) act at once. Transitions made here
are recorded with actor ``model``.

No ``from __future__ import annotations`` here: the confirming tools name resolvers defined inside
``build`` in their annotations (``Resolve(ask_create)``), which only evaluated annotations can reach.
"""

import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp.types import ToolAnnotations
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field

from apps.mcp.auth import principal_of
from apps.mcp.domains.common import add_capabilities_tool, validated
from apps.mcp.registry import domain_errors, new_domain_server
from packages.core.errors import AppError, FieldError, ValidationFailed
from packages.core.idempotency import IdempotencyKey
from packages.core.resources import Resources
from packages.core.strategies.schemas import MAX_VERSION
from packages.core.trading.accounts import AccountService
from packages.core.trading.confirmations import Proposal
from packages.core.trading.kill_switch import KillSwitchService
from packages.core.trading.schemas import (
    AccountDetail,
    AccountList,
    ConfirmationRequired,
    ConfirmedOut,
    CostModel,
    CreateAccountRequest,
    CreateDeploymentRequest,
    DeploymentList,
    DeploymentOut,
    DeploymentStatus,
    FillPage,
    KillSwitchOut,
    KillSwitchRequest,
    ManualActionBody,
    ManualActionOut,
    MarketName,
    OpenAction,
    OrderPage,
    PnlSeriesOut,
    PositionPage,
    ReadinessOut,
    RiskLimits,
)
from packages.core.trading.service import DeploymentService

SUMMARY = "Deploy strategies to paper trading, watch and control deployments, orders, positions and PnL."
INSTRUCTIONS = (
    SUMMARY + " Money-moving tools (create_deployment, start_deployment, manual_action 'open', raising "
    "limits with set_risk_limits) need the user's confirmation: the client asks them when it can; "
    "otherwise the tool returns a preview and a token the user confirms in the Minsy app. You cannot "
    "confirm for them. Pausing, stopping, closing, reducing, flattening and kill switches act at once."
)
# Elicitation rides inside the tool call from this protocol revision on (stateless servers included);
# earlier revisions need a back-channel this stateless server does not keep.
_INPUT_REQUIRED_VERSION = "2026-07-28"

READ_ONLY = ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False)
MONEY_MOVING = ToolAnnotations(
    readOnlyHint=False, destructiveHint=True, idempotentHint=False, openWorldHint=False
)
SAFETY = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False)

DeploymentId = Annotated[
    uuid.UUID, Field(description="A deployment id from list_deployments or create_deployment.")
]
PageLimit = Annotated[int, Field(ge=1, le=200)]
Cursor = Annotated[str | None, Field(max_length=200, description="next_cursor of the previous page.")]
Reason = Annotated[str | None, Field(max_length=500, description="Why, in the user's words (recorded).")]
IdempotencyKeyArgument = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=200,
        description="Pass the same key when retrying, so a retry does not make a second one.",
    ),
]


class ConfirmAnswer(BaseModel):
    """What the user answers when the client asks them to confirm."""

    confirm: bool = Field(description="Yes: do exactly this now. No: do nothing.")


class NotAsked(BaseModel):
    """The client could not be asked (no elicitation support, or the request is not valid)."""

    asked: Literal[False] = False


class ActionOutcome(BaseModel):
    """What a trading tool did: ``done`` (the user confirmed in the client, or it acted at once),
    ``recorded`` (a manual action the next cycle carries out), or ``confirmation_required`` (nothing
    happened yet: the user must confirm the preview in the app)."""

    status: Literal["done", "recorded", "confirmation_required"]
    message: str
    confirmation: ConfirmationRequired | None = None
    confirmed: ConfirmedOut | None = None
    deployment: DeploymentOut | None = None
    manual_action: ManualActionOut | None = None


Answer = ElicitationResult[Any]


def _can_elicit(ctx: Context) -> bool:
    capabilities = ctx.client_capabilities
    elicitation = None if capabilities is None else capabilities.elicitation
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return False
    version = ctx.protocol_version
    if version is not None and is_version_at_least(version, _INPUT_REQUIRED_VERSION):
        return True
    return bool(ctx.session.can_send_request)


def _question(proposal: Proposal) -> str:
    return f"{proposal.summary}\n\nDo exactly this now?"


def _said_yes(answer: Answer) -> bool:
    return (
        isinstance(answer, AcceptedElicitation)
        and isinstance(answer.data, ConfirmAnswer)
        and answer.data.confirm
    )


def _asked(answer: Answer) -> bool:
    return not (isinstance(answer, AcceptedElicitation) and isinstance(answer.data, NotAsked))


def _waiting(confirmation: ConfirmationRequired, answer: Answer) -> ActionOutcome:
    expires = confirmation.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    if _asked(answer):
        message = (
            "The user did not confirm in their client, so nothing happened. If they change their mind they "
            f"can still confirm it in the Minsy app until {expires}; do not retry on your own."
        )
    else:
        message = (
            "Nothing happened yet. Show the user the summary and ask them to confirm it in the Minsy app "
            f"(or POST /api/v1/confirmations/{confirmation.token} with their own sign-in) before {expires}. "
            "You cannot confirm it yourself."
        )
    return ActionOutcome(status="confirmation_required", message=message, confirmation=confirmation)


def _done(confirmed: ConfirmedOut, summary: str) -> ActionOutcome:
    return ActionOutcome(
        status="done", message=f"The user confirmed in their client. Done: {summary}", confirmed=confirmed
    )


def _manual_body(**fields: Any) -> Any:
    """The manual action as the REST body names it; errors point at the tool's arguments."""
    try:
        return validated(ManualActionBody, "manual action", **fields).root
    except ValidationFailed as exc:
        action = str(fields.get("action"))
        prefix = f"/{action}"
        exc.errors = [
            FieldError(e.code, e.pointer.removeprefix(prefix) or "/", e.message, e.hint) for e in exc.errors
        ]
        raise


def build(resources: Resources) -> MCPServer:
    server = new_domain_server(resources, "trading", INSTRUCTIONS)
    add_capabilities_tool(server, "trading", SUMMARY)

    def deployments(uow: Any, ctx: Context) -> DeploymentService:
        return DeploymentService(uow, principal_of(ctx), resources, actor="model")

    async def ask(ctx: Context, propose: Any) -> Elicit[ConfirmAnswer] | NotAsked:
        """The elicitation for a proposal, when the client can answer one and the request is valid
        (an invalid one is reported by the tool itself)."""
        if not _can_elicit(ctx):
            return NotAsked()
        try:
            async with resources.unit_of_work() as uow:
                proposal = await propose(deployments(uow, ctx))
        except AppError:
            return NotAsked()
        if proposal is None:
            return NotAsked()
        return Elicit(_question(proposal), ConfirmAnswer)

    # --- accounts --------------------------------------------------------------------------------

    @server.tool(description="Your broker accounts (paper), newest first.", annotations=READ_ONLY)
    @domain_errors
    async def list_broker_accounts(ctx: Context, limit: PageLimit = 20, cursor: Cursor = None) -> AccountList:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await AccountService(uow, principal, resources, actor="model").list(
                limit=limit, cursor=cursor
            )

    @server.tool(
        description=(
            "Open a paper account on the built-in simulated broker with starting cash (the user's first "
            "account becomes their default). cost_models sets fees/slippage/spread per market with the "
            "backtest's names (fee_bps, fee_fixed, slippage_bps, spread_bps...); defaults otherwise. Returns "
            "the account with its balances."
        ),
        annotations=ToolAnnotations(
            readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False
        ),
    )
    @domain_errors
    async def create_paper_account(
        ctx: Context,
        name: Annotated[str, Field(min_length=1, max_length=120)],
        starting_cash: Annotated[Decimal, Field(gt=0, description="Cash deposited at opening.")],
        currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD",
        cost_models: dict[MarketName, CostModel] | None = None,
        idempotency_key: IdempotencyKeyArgument = None,
    ) -> AccountDetail:
        principal = principal_of(ctx)
        body = validated(
            CreateAccountRequest,
            "paper account",
            name=name,
            starting_cash=starting_cash,
            currency=currency,
            cost_models=cost_models,
        )
        async with resources.unit_of_work() as uow:
            account, _ = await AccountService(uow, principal, resources, actor="model").create(
                body, IdempotencyKey.argument(idempotency_key)
            )
        return account

    # --- deployments -----------------------------------------------------------------------------

    @server.tool(
        description=(
            "Can a deployment start? Every check (strategy confirmed and valid, market data and warm-up "
            "history for its clock, account active with enough free cash, limits, kill switches) and what "
            "is missing, in words to pass on to the user."
        ),
        annotations=READ_ONLY,
    )
    @domain_errors
    async def check_deployment_readiness(ctx: Context, deployment_id: DeploymentId) -> ReadinessOut:
        async with resources.unit_of_work() as uow:
            return await deployments(uow, ctx).readiness(deployment_id)

    def create_body(**fields: Any) -> CreateDeploymentRequest:
        return validated(CreateDeploymentRequest, "deployment", **fields)

    async def ask_create(
        ctx: Context,
        strategy_id: uuid.UUID,
        capital: Decimal,
        version: int | None,
        account_id: uuid.UUID | None,
        name: str | None,
        risk_limits: RiskLimits | None,
        clock: str,
        replay_start: str | None,
        replay_speed: float | None,
    ) -> Elicit[ConfirmAnswer] | NotAsked:
        fields = {
            "strategy_id": strategy_id,
            "capital": capital,
            "version": version,
            "account_id": account_id,
            "name": name,
            "risk_limits": risk_limits,
            "clock": clock,
            "replay_start": replay_start,
            "replay_speed": replay_speed,
        }

        async def propose(service: DeploymentService) -> Proposal:
            return await service.propose_create(create_body(**fields))

        return await ask(ctx, propose)

    @server.tool(
        description=(
            "Deploy a saved strategy to paper trading (money-moving: the user confirms). Pins the strategy "
            "version (default: current), uses the account (default: the user's default account), the capital, "
            "risk limits (fractions: max_daily_loss 0.05 = 5% a day, max_drawdown 0.2 = 20%) and the clock: "
            "'replay' runs offline from replay_start (an ISO date in the past) at replay_speed simulated "
            "seconds per second; 'realtime' follows new bars. The deployment is created pending; start it "
            "with start_deployment. Pass an idempotency_key when retrying."
        ),
        annotations=MONEY_MOVING,
    )
    @domain_errors
    async def create_deployment(
        ctx: Context,
        strategy_id: uuid.UUID,
        capital: Annotated[Decimal, Field(gt=0, description="Account currency taken for this deployment.")],
        answer: Annotated[Answer, Resolve(ask_create)],
        version: Annotated[int | None, Field(ge=1, le=MAX_VERSION)] = None,
        account_id: uuid.UUID | None = None,
        name: Annotated[str | None, Field(min_length=1, max_length=200)] = None,
        risk_limits: RiskLimits | None = None,
        clock: Literal["realtime", "replay"] = "realtime",
        replay_start: Annotated[
            str | None, Field(max_length=40, description="ISO date or time, UTC.")
        ] = None,
        replay_speed: Annotated[float | None, Field(ge=1)] = None,
        idempotency_key: IdempotencyKeyArgument = None,
    ) -> ActionOutcome:
        body = create_body(
            strategy_id=strategy_id,
            capital=capital,
            version=version,
            account_id=account_id,
            name=name,
            risk_limits=risk_limits,
            clock=clock,
            replay_start=replay_start,
            replay_speed=replay_speed,
        )
        async with resources.unit_of_work() as uow:
            service = deployments(uow, ctx)
            outcome = await service.request_create(body, IdempotencyKey.argument(idempotency_key))
            if isinstance(outcome, ConfirmedOut):
                return ActionOutcome(
                    status="done",
                    message="This idempotency_key's deployment was already created.",
                    confirmed=outcome,
                )
            if _said_yes(answer):
                confirmed = await service.confirm(outcome.token, outcome.action_hash, via="mcp_elicitation")
                return _done(confirmed, outcome.summary)
        return _waiting(outcome, answer)

    @server.tool(description="Your deployments, newest first (optionally one status).", annotations=READ_ONLY)
    @domain_errors
    async def list_deployments(
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
        cursor: Cursor = None,
        status: DeploymentStatus | None = None,
    ) -> DeploymentList:
        async with resources.unit_of_work() as uow:
            return await deployments(uow, ctx).list(limit=limit, cursor=cursor, status=status)

    @server.tool(
        description=(
            "One deployment: status, trading state, last bar, cycles, PnL summary (total_return and drawdown "
            "are fractions), risk limits and kill switches in force."
        ),
        annotations=READ_ONLY,
    )
    @domain_errors
    async def get_deployment(ctx: Context, deployment_id: DeploymentId) -> DeploymentOut:
        async with resources.unit_of_work() as uow:
            return await deployments(uow, ctx).get(deployment_id)

    async def ask_start(ctx: Context, deployment_id: uuid.UUID) -> Elicit[ConfirmAnswer] | NotAsked:
        async def propose(service: DeploymentService) -> Proposal:
            return await service.propose_start(deployment_id)

        return await ask(ctx, propose)

    @server.tool(
        description=(
            "Start (or resume) a pending or paused deployment (money-moving: the user confirms). Refused "
            "with the readiness problems when it is not ready; check_deployment_readiness lists them."
        ),
        annotations=MONEY_MOVING,
    )
    @domain_errors
    async def start_deployment(
        ctx: Context, deployment_id: DeploymentId, answer: Annotated[Answer, Resolve(ask_start)]
    ) -> ActionOutcome:
        async with resources.unit_of_work() as uow:
            service = deployments(uow, ctx)
            outcome = await service.request_start(deployment_id)
            assert isinstance(outcome, ConfirmationRequired)
            if _said_yes(answer):
                confirmed = await service.confirm(outcome.token, outcome.action_hash, via="mcp_elicitation")
                return _done(confirmed, outcome.summary)
        return _waiting(outcome, answer)

    @server.tool(
        description="Pause an active deployment at once (no confirmation needed); start_deployment resumes it.",
        annotations=ToolAnnotations(
            readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=False
        ),
    )
    @domain_errors
    async def pause_deployment(
        ctx: Context, deployment_id: DeploymentId, reason: Reason = None
    ) -> DeploymentOut:
        async with resources.unit_of_work() as uow:
            return await deployments(uow, ctx).pause(deployment_id, reason)

    @server.tool(
        description=(
            "Stop a deployment for good, at once (no confirmation needed): no more cycles; positions stay "
            "as they are (use manual_action 'flatten' first to close them)."
        ),
        annotations=SAFETY,
    )
    @domain_errors
    async def stop_deployment(
        ctx: Context, deployment_id: DeploymentId, reason: Reason = None
    ) -> DeploymentOut:
        async with resources.unit_of_work() as uow:
            return await deployments(uow, ctx).stop(deployment_id, reason)

    # --- what it did -----------------------------------------------------------------------------

    @server.tool(
        description="A deployment's positions by symbol (open ones unless open_only is false).",
        annotations=READ_ONLY,
    )
    @domain_errors
    async def get_positions(
        ctx: Context,
        deployment_id: DeploymentId,
        open_only: bool = True,
        limit: PageLimit = 50,
        cursor: Cursor = None,
    ) -> PositionPage:
        async with resources.unit_of_work() as uow:
            return await deployments(uow, ctx).positions(
                deployment_id, limit=limit, cursor=cursor, open_only=open_only
            )

    @server.tool(
        description="A deployment's orders, newest first (optionally one status).", annotations=READ_ONLY
    )
    @domain_errors
    async def get_orders(
        ctx: Context,
        deployment_id: DeploymentId,
        status: Literal["new", "accepted", "partially_filled", "filled", "canceled", "rejected", "expired"]
        | None = None,
        limit: PageLimit = 50,
        cursor: Cursor = None,
    ) -> OrderPage:
        async with resources.unit_of_work() as uow:
            return await deployments(uow, ctx).orders(
                deployment_id, limit=limit, cursor=cursor, status=status
            )

    @server.tool(description="A deployment's fills, newest first.", annotations=READ_ONLY)
    @domain_errors
    async def get_fills(
        ctx: Context, deployment_id: DeploymentId, limit: PageLimit = 50, cursor: Cursor = None
    ) -> FillPage:
        async with resources.unit_of_work() as uow:
            return await deployments(uow, ctx).fills(deployment_id, limit=limit, cursor=cursor)

    @server.tool(
        description=(
            "A deployment's equity and drawdown over time (downsampled, extremes kept; drawdown is a fraction "
            "<= 0) and its latest PnL summary."
        ),
        annotations=READ_ONLY,
    )
    @domain_errors
    async def get_pnl(
        ctx: Context, deployment_id: DeploymentId, points: Annotated[int, Field(ge=10, le=2000)] = 200
    ) -> PnlSeriesOut:
        async with resources.unit_of_work() as uow:
            return await deployments(uow, ctx).pnl(deployment_id, start=None, end=None, points=points)

    @server.tool(
        description=(
            "Compare the deployment's paper trades with the backtest of the same period, trade by trade, "
            "each difference with its cause."
        ),
        annotations=READ_ONLY,
    )
    @domain_errors
    async def get_reconciliation(ctx: Context, deployment_id: DeploymentId) -> dict[str, Any]:
        async with resources.unit_of_work() as uow:
            return await deployments(uow, ctx).reconciliation(deployment_id)

    # --- control ---------------------------------------------------------------------------------

    def manual_fields(
        action: str,
        symbol: str | None,
        direction: str | None,
        quantity: Decimal | None,
        notional: Decimal | None,
        order_type: str | None,
        limit_price: Decimal | None,
        fraction: float | None,
        order_id: uuid.UUID | None,
        reason: str | None,
    ) -> dict[str, Any]:
        return {
            "action": action,
            "symbol": symbol,
            "direction": direction,
            "quantity": quantity,
            "notional": notional,
            "order_type": order_type,
            "limit_price": limit_price,
            "fraction": fraction,
            "order_id": order_id,
            "reason": reason,
        }

    async def ask_open(
        ctx: Context,
        deployment_id: uuid.UUID,
        action: str,
        symbol: str | None,
        direction: str | None,
        quantity: Decimal | None,
        notional: Decimal | None,
        order_type: str | None,
        limit_price: Decimal | None,
        fraction: float | None,
        order_id: uuid.UUID | None,
        reason: str | None,
    ) -> Elicit[ConfirmAnswer] | NotAsked:
        if action != "open":
            return NotAsked()
        fields = manual_fields(
            action, symbol, direction, quantity, notional, order_type, limit_price, fraction, order_id, reason
        )

        async def propose(service: DeploymentService) -> Proposal:
            body = _manual_body(**fields)
            assert isinstance(body, OpenAction)
            return await service.propose_manual_open(deployment_id, body)

        return await ask(ctx, propose)

    @server.tool(
        description=(
            "A manual action on a deployment. 'close' (symbol), 'reduce' (symbol with fraction 0-1 or "
            "quantity), 'flatten' (every position) and 'cancel_order' (order_id) are safety actions, recorded "
            "at once and carried out by the next cycle through the risk gate. 'open' (symbol, direction long/short, "
            "quantity or notional, order_type market/limit with limit_price) opens or increases a position: "
            "money-moving, the user confirms."
        ),
        annotations=MONEY_MOVING,
    )
    @domain_errors
    async def manual_action(
        ctx: Context,
        deployment_id: DeploymentId,
        action: Literal["open", "close", "reduce", "flatten", "cancel_order"],
        answer: Annotated[Answer, Resolve(ask_open)],
        symbol: Annotated[str | None, Field(max_length=32)] = None,
        direction: Literal["long", "short"] | None = None,
        quantity: Annotated[Decimal | None, Field(gt=0)] = None,
        notional: Annotated[Decimal | None, Field(gt=0)] = None,
        order_type: Literal["market", "limit"] | None = None,
        limit_price: Annotated[Decimal | None, Field(gt=0)] = None,
        fraction: Annotated[float | None, Field(gt=0, lt=1)] = None,
        order_id: uuid.UUID | None = None,
        reason: Reason = None,
    ) -> ActionOutcome:
        body = _manual_body(
            **manual_fields(
                action,
                symbol,
                direction,
                quantity,
                notional,
                order_type,
                limit_price,
                fraction,
                order_id,
                reason,
            )
        )
        async with resources.unit_of_work() as uow:
            service = deployments(uow, ctx)
            outcome = await service.manual_action(deployment_id, body)
            if isinstance(outcome, ManualActionOut):
                return ActionOutcome(
                    status="recorded",
                    message=f"Recorded: the next cycle carries out the {action} through the risk gate.",
                    manual_action=outcome,
                )
            assert isinstance(outcome, ConfirmationRequired)
            if _said_yes(answer):
                confirmed = await service.confirm(outcome.token, outcome.action_hash, via="mcp_elicitation")
                return _done(confirmed, outcome.summary)
        return _waiting(outcome, answer)

    async def ask_limits(
        ctx: Context, deployment_id: uuid.UUID, risk_limits: RiskLimits
    ) -> Elicit[ConfirmAnswer] | NotAsked:
        async def propose(service: DeploymentService) -> Proposal | None:
            return await service.propose_risk_limits(deployment_id, risk_limits)

        return await ask(ctx, propose)

    @server.tool(
        description=(
            "Replace a deployment's risk limits. Tighter limits apply at once; raising any limit (a higher "
            "number, removing one, more symbols) is money-moving: the user confirms."
        ),
        annotations=MONEY_MOVING,
    )
    @domain_errors
    async def set_risk_limits(
        ctx: Context,
        deployment_id: DeploymentId,
        risk_limits: RiskLimits,
        answer: Annotated[Answer, Resolve(ask_limits)],
    ) -> ActionOutcome:
        async with resources.unit_of_work() as uow:
            service = deployments(uow, ctx)
            outcome = await service.update_risk_limits(deployment_id, risk_limits)
            if isinstance(outcome, DeploymentOut):
                return ActionOutcome(
                    status="done", message="The tighter limits apply now.", deployment=outcome
                )
            assert isinstance(outcome, ConfirmationRequired)
            if _said_yes(answer):
                confirmed = await service.confirm(outcome.token, outcome.action_hash, via="mcp_elicitation")
                return _done(confirmed, outcome.summary)
        return _waiting(outcome, answer)

    @server.tool(
        description=(
            "Set a kill switch at once: scope 'deployment' (deployment_id) or 'user' (all of the user's "
            "deployments). New orders stop at the next cycle; flatten also closes every position. Clearing "
            "is for the user, in the app."
        ),
        annotations=SAFETY,
    )
    @domain_errors
    async def set_kill_switch(
        ctx: Context,
        scope: Literal["deployment", "user"],
        reason: Annotated[str, Field(min_length=1, max_length=500)],
        deployment_id: uuid.UUID | None = None,
        flatten: bool = False,
    ) -> KillSwitchOut:
        principal = principal_of(ctx)
        body = validated(
            KillSwitchRequest,
            "kill switch",
            scope=scope,
            reason=reason,
            deployment_id=deployment_id,
            flatten=flatten,
        )
        async with resources.unit_of_work() as uow:
            switch, _ = await KillSwitchService(uow, principal, resources, actor="model").set(body)
        return switch

    return server
