"""Paper trading's inputs and outputs: broker accounts, deployments and what their cycles produce,
risk limits, readiness, confirmations of money-moving actions, kill switches and manual actions.

Money goes in as exact decimals (JSON numbers or strings) and comes out as JSON numbers; fractions
(exposure, loss, drawdown, returns) are fractions: 0.05 means 5%.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, RootModel, StringConstraints

from packages.core.market_data.schemas import StorableText
from packages.core.schemas import StrictModel
from packages.core.strategies.schemas import VersionNumber
from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.trading import risk as runtime_risk

Actor = Literal["user", "model", "system"]
MarketName = Literal["us_stocks", "crypto", "forex", "futures"]
DeploymentStatus = Literal["pending", "active", "paused", "stopped", "error"]
TradingState = Literal["active", "reducing", "halted"]
ClockKind = Literal["realtime", "replay"]
AccountKind = Literal["paper", "live"]
ConfirmableAction = Literal["create_deployment", "start_deployment", "manual_open", "raise_risk_limits"]
KillSwitchScope = Literal["deployment", "user", "global"]
ManualActionName = Literal["open", "close", "reduce", "flatten", "cancel_order"]
ManualActionStatus = Literal["pending", "done", "rejected", "canceled"]

# Money columns are NUMERIC(28, 10): inputs stay far inside them.
MAX_MONEY = Decimal("1e12")
Money = Annotated[Decimal, Field(gt=0, le=MAX_MONEY, max_digits=28, decimal_places=10)]
Quantity = Annotated[Decimal, Field(gt=0, le=MAX_MONEY, max_digits=28, decimal_places=10)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]
# A reason given in a query string (bodies are checked by StrictModel): storable text only.
QueryReason = Annotated[str, StringConstraints(min_length=1, max_length=500), StorableText]
Symbol = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:^=-]*$")]
Name = Annotated[str, Field(min_length=1, max_length=120)]
ActionHash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]

_ASSUMED = ExecutionAssumptions.model_fields
_DEFAULTS = ExecutionAssumptions()


def _described(name: str) -> str:
    return f"As the backtest's {name}: {_ASSUMED[name].description}"


# --- broker accounts ------------------------------------------------------------------------------


class CostModel(StrictModel):
    """How the simulated broker charges and fills one asset class: the backtest's execution
    assumptions of the same names, with the same defaults and bounds."""

    fee_bps: float = Field(default=_DEFAULTS.fee_bps, ge=0, le=10_000, description=_described("fee_bps"))
    fee_fixed: float = Field(default=_DEFAULTS.fee_fixed, ge=0, le=1e6, description=_described("fee_fixed"))
    slippage_model: Literal["bps", "volume_share"] = Field(
        default=_DEFAULTS.slippage_model, description=_described("slippage_model")
    )
    slippage_bps: float = Field(
        default=_DEFAULTS.slippage_bps, ge=0, le=10_000, description=_described("slippage_bps")
    )
    volume_impact: float = Field(
        default=_DEFAULTS.volume_impact, ge=0, le=100, description=_described("volume_impact")
    )
    spread_bps: float = Field(
        default=_DEFAULTS.spread_bps, ge=0, le=10_000, description=_described("spread_bps")
    )
    limit_fill_on_touch: bool = Field(
        default=_DEFAULTS.limit_fill_on_touch, description=_described("limit_fill_on_touch")
    )

    def assumptions(self, **overrides: Any) -> ExecutionAssumptions:
        """The backtest's assumptions with this cost model (for the simulated broker)."""
        return ExecutionAssumptions(**{**self.model_dump(), **overrides})


class CreateAccountRequest(StrictModel):
    kind: AccountKind = Field(
        default="paper", description="Only 'paper' (the built-in simulated broker) for now."
    )
    name: Name
    starting_cash: Money = Field(description="Cash deposited when the account opens, in `currency`.")
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"
    cost_models: dict[MarketName, CostModel] | None = Field(
        default=None,
        description="Fees, slippage and spread per market; a market left out uses the backtest's defaults.",
    )
    endpoint: Annotated[str | None, Field(max_length=300)] = Field(
        default=None, description="Refused for paper accounts: a paper account never reaches a broker."
    )
    credentials: Annotated[dict[str, str] | None, Field(max_length=20)] = Field(
        default=None, description="Refused for paper accounts: a paper account holds no credentials."
    )


class DeactivateAccountRequest(StrictModel):
    reason: Reason | None = None


class PositionBalance(BaseModel):
    symbol: str
    quantity: float = Field(description="Signed: above 0 long, below 0 short.")
    average_price: float
    realized_pnl: float = Field(description="Price PnL of closed quantity, net of the symbol's fees.")


class AccountBalances(BaseModel):
    """The account's state: the replay of its ledger (the source of truth)."""

    cash: float = Field(description="Deposits and every fill's cash, fees included.")
    deposits: float
    fees_paid: float
    realized_pnl: float
    allocated: float = Field(description="Capital of the account's deployments that are not stopped.")
    available: float = Field(description="cash - allocated: what a new deployment may take.")
    positions: list[PositionBalance]
    entries: int = Field(description="Ledger entries the balances are computed from.")


class AccountOut(BaseModel):
    id: uuid.UUID
    kind: AccountKind
    provider: str
    name: str
    status: Literal["active", "inactive"]
    is_default: bool
    currency: str
    starting_cash: float
    cost_models: dict[MarketName, CostModel]
    created_at: datetime
    updated_at: datetime


class AccountDetail(AccountOut):
    balances: AccountBalances


class AccountList(BaseModel):
    items: list[AccountOut]
    next_cursor: str | None


# --- deployments ----------------------------------------------------------------------------------


class RiskLimits(StrictModel):
    """Checked before every order. A limit left empty (null) does not apply."""

    max_position_notional: Money | None = Field(
        default=None,
        description="Largest position per symbol in account currency (quantity x price).",
    )
    max_symbol_exposure: Annotated[float, Field(gt=0, le=10)] | None = Field(
        default=1.0, description="Largest position per symbol as a fraction of equity (1.0 = 100%)."
    )
    max_daily_loss: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        default=0.05, description="Loss in one trading day, as a fraction of the day's starting equity."
    )
    max_drawdown: Annotated[float, Field(gt=0, lt=1)] | None = Field(
        default=0.2, description="Fall of equity from its peak, as a fraction of the peak."
    )
    max_orders_per_minute: Annotated[int, Field(ge=1, le=10_000)] | None = Field(
        default=30, description="Orders submitted per wall-clock minute."
    )
    allowed_symbols: Annotated[list[Symbol], Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="Symbols this deployment may trade; null: every symbol of its strategy."
    )

    def for_runtime(self) -> runtime_risk.RiskLimits:
        """The limits as the domain's risk gate reads them (symbols upper-case)."""
        return runtime_risk.RiskLimits(
            max_position_notional=None
            if self.max_position_notional is None
            else float(self.max_position_notional),
            max_symbol_exposure=self.max_symbol_exposure,
            max_daily_loss=self.max_daily_loss,
            max_drawdown=self.max_drawdown,
            max_orders_per_minute=self.max_orders_per_minute,
            allowed_symbols=None
            if self.allowed_symbols is None
            else frozenset(symbol.upper() for symbol in self.allowed_symbols),
        )


class CreateDeploymentRequest(StrictModel):
    strategy_id: uuid.UUID
    version: VersionNumber | None = Field(
        default=None, description="The strategy revision to run (pinned); default: its current version."
    )
    account_id: uuid.UUID | None = Field(default=None, description="Default: your default account.")
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    capital: Money = Field(description="Capital the deployment trades with, taken from the account's cash.")
    risk_limits: RiskLimits = Field(default_factory=RiskLimits)
    clock: ClockKind = Field(
        default="realtime",
        description="'realtime': cycles follow new bars. 'replay': a private clock from replay_start (offline).",
    )
    replay_start: datetime | None = Field(
        default=None, description="Replay clock only: the historical moment it starts from (UTC)."
    )
    replay_speed: Annotated[float, Field(ge=1, le=10_000_000)] | None = Field(
        default=None,
        description="Replay clock only: simulated seconds per real second (default from the server).",
    )


class TransitionRequest(StrictModel):
    reason: Reason | None = None


class PnlSummary(BaseModel):
    bar_at: datetime
    equity: float
    cash: float
    realized_pnl: float
    unrealized_pnl: float
    positions_value: float
    drawdown: float = Field(description="Fraction below the equity peak (<= 0).")
    total_return: float = Field(description="equity / capital - 1.")


class KillSwitchOut(BaseModel):
    id: uuid.UUID
    scope: KillSwitchScope
    deployment_id: uuid.UUID | None
    flatten: bool
    reason: str
    set_by: str
    set_at: datetime
    cleared_at: datetime | None
    cleared_by: str | None


class DeploymentSummary(BaseModel):
    id: uuid.UUID
    name: str
    status: DeploymentStatus
    trading_state: TradingState
    strategy_id: uuid.UUID | None = Field(description="None once the strategy was deleted.")
    strategy_version: int
    account_id: uuid.UUID
    market: str
    symbols: list[str]
    timeframe: str
    capital: float
    clock: ClockKind
    replay_start: datetime | None
    replay_speed: float | None
    last_bar_at: datetime | None
    cycles: int
    created_at: datetime
    updated_at: datetime


class DeploymentOut(DeploymentSummary):
    risk_limits: RiskLimits
    error: str | None
    started_at: datetime | None
    stopped_at: datetime | None
    last_event_seq: int = Field(description="The newest event's seq (the SSE id); 0 before any.")
    pnl: PnlSummary | None = Field(description="The latest PnL snapshot; None before the first cycle.")
    kill_switches: list[KillSwitchOut] = Field(description="Kill switches in force over this deployment.")
    pending_manual_actions: int


class DeploymentList(BaseModel):
    items: list[DeploymentSummary]
    next_cursor: str | None


class ReadinessCheck(BaseModel):
    code: str
    ok: bool
    message: str
    hint: str | None = Field(default=None, description="What to do about a failed check.")


class ReadinessOut(BaseModel):
    deployment_id: uuid.UUID
    ready: bool
    problems: list[str] = Field(description="What must change before it can start, in plain words.")
    checks: list[ReadinessCheck]


class OrderOut(BaseModel):
    id: uuid.UUID
    client_order_id: str
    broker_order_id: str | None
    symbol: str
    side: str
    order_type: str
    purpose: str
    exit_rule: str | None
    status: str
    quantity: float | None
    filled_quantity: float
    average_fill_price: float | None
    limit_price: float | None
    stop_price: float | None
    reason: str | None
    bar_at: datetime
    submitted_at: datetime | None
    created_at: datetime
    updated_at: datetime


class FillOut(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    symbol: str
    side: str
    quantity: float
    price: float
    fee: float
    slippage: float
    filled_at: datetime


class PositionOut(BaseModel):
    id: uuid.UUID
    symbol: str
    quantity: float
    average_price: float | None
    realized_pnl: float
    state: dict[str, Any] = Field(description="What the cycle keeps: entry bar, stop/target levels, ...")
    updated_at: datetime


class SignalOut(BaseModel):
    id: uuid.UUID
    symbol: str
    kind: str
    side: str | None
    bar_at: datetime
    payload: dict[str, Any]
    created_at: datetime


class RiskDecisionOut(BaseModel):
    id: int
    bar_at: datetime | None
    client_order_id: str | None
    allowed: bool
    rule: str
    compared: dict[str, Any] = Field(description="The numbers the rule compared.")
    message: str
    created_at: datetime


class TransitionOut(BaseModel):
    id: int
    field: Literal["status", "trading_state"]
    from_value: str | None
    to_value: str
    actor: str
    reason: str
    created_at: datetime


class ManualActionOut(BaseModel):
    id: uuid.UUID
    deployment_id: uuid.UUID
    action: ManualActionName
    params: dict[str, Any]
    status: ManualActionStatus
    actor: str
    reason: str
    confirmation_id: uuid.UUID | None
    result: dict[str, Any] | None
    created_at: datetime
    processed_at: datetime | None


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None


class FillPage(BaseModel):
    items: list[FillOut]
    next_cursor: str | None


class PositionPage(BaseModel):
    items: list[PositionOut]
    next_cursor: str | None


class SignalPage(BaseModel):
    items: list[SignalOut]
    next_cursor: str | None


class RiskDecisionPage(BaseModel):
    items: list[RiskDecisionOut]
    next_cursor: str | None


class TransitionPage(BaseModel):
    items: list[TransitionOut]
    next_cursor: str | None


class ManualActionPage(BaseModel):
    items: list[ManualActionOut]
    next_cursor: str | None


class PnlSeriesOut(BaseModel):
    """Equity and drawdown on one time axis, downsampled for charts (every bucket's extremes kept)."""

    deployment_id: uuid.UUID
    capital: float
    points: int
    snapshots: int = Field(description="PnL snapshots in the range before downsampling.")
    time: list[datetime] = Field(description="Bar open times, UTC.")
    equity: list[float]
    drawdown: list[float] = Field(description="Fraction below the running peak (<= 0).")
    latest: PnlSummary | None


# --- manual actions -------------------------------------------------------------------------------


class OpenAction(StrictModel):
    """Open or increase a position: money-moving, so it waits for the user's confirmation."""

    action: Literal["open"]
    symbol: Symbol
    direction: Literal["long", "short"] = Field(description="long buys, short sells (short selling).")
    quantity: Quantity | None = Field(default=None, description="Units to trade; or give notional.")
    notional: Money | None = Field(default=None, description="Value to trade in account currency.")
    order_type: Literal["market", "limit"] = "market"
    limit_price: Money | None = Field(default=None, description="Required for (and only for) a limit order.")
    reason: Reason | None = None


class CloseAction(StrictModel):
    """Close the whole position in one symbol (a safety action: recorded at once)."""

    action: Literal["close"]
    symbol: Symbol
    reason: Reason | None = None


class ReduceAction(StrictModel):
    """Make a position smaller by a fraction of it or by a quantity (a safety action)."""

    action: Literal["reduce"]
    symbol: Symbol
    fraction: Annotated[float, Field(gt=0, lt=1)] | None = None
    quantity: Quantity | None = None
    reason: Reason | None = None


class FlattenAction(StrictModel):
    """Close every position of the deployment (a safety action)."""

    action: Literal["flatten"]
    reason: Reason | None = None


class CancelOrderAction(StrictModel):
    """Cancel one open order (a safety action)."""

    action: Literal["cancel_order"]
    order_id: uuid.UUID
    reason: Reason | None = None


ManualActionRequest = Annotated[
    OpenAction | CloseAction | ReduceAction | FlattenAction | CancelOrderAction,
    Field(discriminator="action"),
]


class ManualActionBody(RootModel[ManualActionRequest]):
    """One manual action, as the MCP tool's flat arguments are validated."""


# --- confirmations --------------------------------------------------------------------------------


class ConfirmationRequired(BaseModel):
    """A money-moving action waiting for the user: nothing happened yet."""

    status: Literal["confirmation_required"] = "confirmation_required"
    confirmation_id: uuid.UUID
    action: ConfirmableAction
    summary: str = Field(description="The exact action, in words to show the user.")
    preview: dict[str, Any] = Field(description="The exact action, as data.")
    action_hash: str = Field(description="SHA-256 of the action's canonical JSON; the token is bound to it.")
    token: str = Field(description="Single use; only its SHA-256 is stored.")
    expires_at: datetime
    confirm_with: str = Field(description="How the user confirms.")


class ConfirmRequest(StrictModel):
    action_hash: ActionHash | None = Field(
        default=None,
        description="The action_hash of the preview the user saw; a different action answers 409.",
    )


class ConfirmationOut(BaseModel):
    """A confirmation as its owner sees it (GET /confirmations/{token})."""

    confirmation_id: uuid.UUID
    action: ConfirmableAction
    status: Literal["pending", "confirmed", "expired", "refused"] = Field(
        description="refused: the state it was computed from changed before it was confirmed."
    )
    summary: str
    preview: dict[str, Any]
    action_hash: str
    requested_via: Literal["api", "mcp"]
    expires_at: datetime
    used_at: datetime | None
    created_at: datetime


class ConfirmedOut(BaseModel):
    """What a confirmed action did."""

    status: Literal["confirmed"] = "confirmed"
    confirmation_id: uuid.UUID
    action: ConfirmableAction
    confirmed_at: datetime
    deployment: DeploymentOut | None = None
    manual_action: ManualActionOut | None = None


# --- kill switches --------------------------------------------------------------------------------


class KillSwitchRequest(StrictModel):
    scope: KillSwitchScope = Field(
        description="'deployment' (one of yours), 'user' (all of yours), 'global' (operators only)."
    )
    deployment_id: uuid.UUID | None = Field(default=None, description="Required for scope 'deployment'.")
    flatten: bool = Field(default=False, description="Also close every position at the next cycle.")
    reason: Reason


class KillSwitchList(BaseModel):
    items: list[KillSwitchOut]
