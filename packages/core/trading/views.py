"""Stored rows as the API and MCP tools show them (money as JSON numbers)."""

from __future__ import annotations

from decimal import Decimal

from packages.core.trading.schemas import (
    DeploymentSummary,
    FillOut,
    KillSwitchOut,
    ManualActionOut,
    OrderOut,
    PnlSummary,
    PositionOut,
    RiskDecisionOut,
    SignalOut,
    TransitionOut,
)
from packages.infra.db.models import (
    Deployment,
    DeploymentTransition,
    Fill,
    KillSwitch,
    ManualAction,
    Order,
    PnlSnapshot,
    Position,
    RiskDecision,
    SignalEvent,
)


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def money(value: Decimal | float, currency: str) -> str:
    """An amount as a user reads it: 12,345.60 USD."""
    return f"{float(value):,.2f} {currency}"


def summary_of(deployment: Deployment) -> DeploymentSummary:
    return DeploymentSummary(
        id=deployment.id,
        name=deployment.name,
        status=deployment.status,
        trading_state=deployment.trading_state,
        strategy_id=deployment.strategy_id,
        strategy_version=deployment.strategy_version,
        account_id=deployment.account_id,
        market=deployment.market,
        symbols=list(deployment.symbols),
        timeframe=deployment.timeframe,
        capital=float(deployment.capital),
        clock=deployment.clock,
        replay_start=deployment.replay_start,
        replay_speed=deployment.replay_speed,
        last_bar_at=deployment.last_bar_at,
        cycles=deployment.cycles,
        created_at=deployment.created_at,
        updated_at=deployment.updated_at,
    )


def pnl_summary(snapshot: PnlSnapshot, capital: Decimal) -> PnlSummary:
    return PnlSummary(
        bar_at=snapshot.bar_at,
        equity=float(snapshot.equity),
        cash=float(snapshot.cash),
        realized_pnl=float(snapshot.realized_pnl),
        unrealized_pnl=float(snapshot.unrealized_pnl),
        positions_value=float(snapshot.positions_value),
        drawdown=float(snapshot.drawdown),
        total_return=float(snapshot.equity / capital - 1) if capital else 0.0,
    )


def kill_switch_out(switch: KillSwitch) -> KillSwitchOut:
    return KillSwitchOut(
        id=switch.id,
        scope=switch.scope,
        deployment_id=switch.deployment_id,
        flatten=switch.flatten,
        reason=switch.reason,
        set_by=switch.set_by,
        set_at=switch.set_at,
        cleared_at=switch.cleared_at,
        cleared_by=switch.cleared_by,
    )


def manual_action_out(action: ManualAction) -> ManualActionOut:
    return ManualActionOut(
        id=action.id,
        deployment_id=action.deployment_id,
        action=action.action,
        params=action.params,
        status=action.status,
        actor=action.actor,
        reason=action.reason,
        confirmation_id=action.confirmation_id,
        result=action.result,
        created_at=action.created_at,
        processed_at=action.processed_at,
    )


def order_out(order: Order) -> OrderOut:
    return OrderOut(
        id=order.id,
        client_order_id=order.client_order_id,
        broker_order_id=order.broker_order_id,
        symbol=order.symbol,
        side=order.side,
        order_type=order.order_type,
        purpose=order.purpose,
        exit_rule=order.exit_rule,
        status=order.status,
        quantity=_number(order.quantity),
        filled_quantity=float(order.filled_quantity),
        average_fill_price=_number(order.average_fill_price),
        limit_price=_number(order.limit_price),
        stop_price=_number(order.stop_price),
        reason=order.reason,
        bar_at=order.bar_at,
        submitted_at=order.submitted_at,
        created_at=order.created_at,
        updated_at=order.updated_at,
    )


def fill_out(fill: Fill) -> FillOut:
    return FillOut(
        id=fill.id,
        order_id=fill.order_id,
        symbol=fill.symbol,
        side=fill.side,
        quantity=float(fill.quantity),
        price=float(fill.price),
        fee=float(fill.fee),
        slippage=float(fill.slippage),
        filled_at=fill.filled_at,
    )


def position_out(position: Position) -> PositionOut:
    return PositionOut(
        id=position.id,
        symbol=position.symbol,
        quantity=float(position.quantity),
        average_price=_number(position.average_price),
        realized_pnl=float(position.realized_pnl),
        state=position.state,
        updated_at=position.updated_at,
    )


def signal_out(signal: SignalEvent) -> SignalOut:
    return SignalOut(
        id=signal.id,
        symbol=signal.symbol,
        kind=signal.kind,
        side=signal.side,
        bar_at=signal.bar_at,
        payload=signal.payload,
        created_at=signal.created_at,
    )


def risk_out(decision: RiskDecision) -> RiskDecisionOut:
    return RiskDecisionOut(
        id=decision.id,
        bar_at=decision.bar_at,
        client_order_id=decision.client_order_id,
        allowed=decision.allowed,
        rule=decision.rule,
        compared=decision.compared,
        message=decision.message,
        created_at=decision.created_at,
    )


def transition_out(transition: DeploymentTransition) -> TransitionOut:
    return TransitionOut(
        id=transition.id,
        field=transition.field,
        from_value=transition.from_value,
        to_value=transition.to_value,
        actor=transition.actor,
        reason=transition.reason,
        created_at=transition.created_at,
    )
