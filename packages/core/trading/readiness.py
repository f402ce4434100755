"""Can a deployment start? Every check answers in words a user understands, with what to do.

The verdicts on the strategy, the data and warm-up history, the account, the cash and the limits
are the domain's (``packages.domain.trading.readiness.check_readiness``); this module gathers the
facts it needs (bars stored before the start per symbol, the account, its free cash, the paper
broker's assumptions) and adds what only the stored state knows: the deployment's status, whether
its strategy still exists and is confirmed, whether its clock has bars (the replay start inside the
stored data; realtime bars published), and kill switches in force.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from packages.core.errors import AppError
from packages.core.market_data.access import market_store, resolve_dataset, visible_namespaces
from packages.core.market_data.realtime import Subscription
from packages.core.market_data.service import read_bars
from packages.core.market_data.universe import to_ns
from packages.core.principal import Principal
from packages.core.strategies.repository import StrategyRepository
from packages.core.trading.accounts import execution_assumptions
from packages.core.trading.ledger import account_state
from packages.core.trading.repository import AccountRepository, KillSwitchRepository
from packages.core.trading.schemas import ReadinessCheck, ReadinessOut, RiskLimits
from packages.core.uow import UnitOfWork
from packages.domain.market_data.bars import Market, Timeframe, parse_timeframe
from packages.domain.market_data.timeconv import iso
from packages.domain.strategy.compiler import compile_strategy
from packages.domain.strategy.errors import StrategyValidationError
from packages.domain.trading.broker import PaperAccount
from packages.domain.trading.readiness import check_readiness as domain_readiness
from packages.infra.db.models import Deployment
from packages.shared_settings import Settings

STARTABLE = ("pending", "paused")
# Calendar time read before the start when counting warm-up bars (the store reads by time): covers
# weekends, holidays and sessions of a few hours per day.
_WARMUP_LOOKBACK_FACTOR = 4
_NS_PER_DAY = 86_400 * 10**9


def _check(code: str, ok: bool, message: str, hint: str | None = None) -> ReadinessCheck:
    return ReadinessCheck(code=code, ok=ok, message=message, hint=None if ok else hint)


def _status_check(deployment: Deployment) -> ReadinessCheck:
    if deployment.status in STARTABLE:
        return _check("status", True, f"The deployment is {deployment.status} and can be started.")
    if deployment.status == "active":
        return _check("status", False, "The deployment is already running.")
    if deployment.status == "error":
        return _check(
            "status",
            False,
            f"The deployment stopped on an error ({deployment.error or 'no reason recorded'}).",
            "Stop it and create a new one.",
        )
    return _check("status", False, "The deployment is stopped for good.", "Create a new one to trade again.")


async def _strategy_checks(
    uow: UnitOfWork, principal: Principal, deployment: Deployment
) -> list[ReadinessCheck]:
    """The saved strategy behind the deployment's copy: still there, and confirmed by the user."""
    strategies = StrategyRepository(uow.session, principal.user_id)
    strategy = None if deployment.strategy_id is None else await strategies.find(deployment.strategy_id)
    if strategy is None:
        return [
            _check(
                "strategy_exists",
                False,
                "The strategy of this deployment was deleted.",
                "Create a new deployment from a saved strategy.",
            )
        ]
    if await strategies.revision(strategy.id, deployment.strategy_version) is None:
        return [
            _check(
                "strategy_exists",
                False,
                f"Version {deployment.strategy_version} of '{strategy.name}' no longer exists.",
                "Deploy a current version.",
            )
        ]
    confirmed = strategy.status == "confirmed"
    return [
        _check("strategy_exists", True, f"Runs '{strategy.name}' version {deployment.strategy_version}."),
        _check(
            "strategy_confirmed",
            confirmed,
            "The strategy is confirmed." if confirmed else f"'{strategy.name}' is still a draft.",
            f"Confirm it (POST /api/v1/strategies/{strategy.id}/confirm) before it trades.",
        ),
    ]


def _warmup_bars(deployment: Deployment) -> int | None:
    try:
        return compile_strategy(deployment.document).warmup_bars
    except StrategyValidationError:
        return None


def _realtime_published(settings: Settings, market: Market, symbol: str, timeframe: Timeframe) -> bool:
    """Whether new bars of the series reach the runtime: providers are online, or the realtime
    refresh publishes the symbol at this timeframe or a finer one."""
    if settings.providers.network_enabled:
        return True
    for text in settings.market_data.realtime_symbols:
        subscription = Subscription.parse(text)
        if (
            subscription.market == market
            and subscription.symbol == symbol
            and subscription.timeframe.nanos <= timeframe.nanos
        ):
            return True
    return False


def _bars_before(
    principal: Principal,
    settings: Settings,
    market: Market,
    symbol: str,
    timeframe: Timeframe,
    start_ns: int,
    needed: int,
) -> int:
    """How many bars (at most ``needed``) are stored before ``start_ns``."""
    lookback = start_ns - needed * timeframe.nanos * _WARMUP_LOOKBACK_FACTOR - 10 * _NS_PER_DAY
    found = len(
        read_bars(principal, market, symbol, timeframe, lookback, start_ns, limit=needed, settings=settings)
    )
    if found < needed:
        found = len(
            read_bars(principal, market, symbol, timeframe, None, start_ns, limit=needed, settings=settings)
        )
    return found


@dataclass(frozen=True)
class _MarketFacts:
    checks: list[ReadinessCheck]
    history_bars: dict[str, int]


def _market_facts(
    principal: Principal, settings: Settings, deployment: Deployment, warmup: int | None
) -> _MarketFacts:
    """Per symbol: whether the clock has bars, and the bars stored before the start (blocking file
    reads: run in a thread)."""
    store = market_store(settings)
    market = Market(deployment.market)
    timeframe = parse_timeframe(deployment.timeframe)
    replay = deployment.clock == "replay" and deployment.replay_start is not None
    start_ns = to_ns(deployment.replay_start if replay else datetime.now(UTC))
    assert start_ns is not None
    checks: list[ReadinessCheck] = []
    history: dict[str, int] = {}
    for symbol in deployment.symbols:
        name = f"{market.value}:{symbol}"
        try:
            served = resolve_dataset(store, visible_namespaces(principal), market, symbol, timeframe)
        except AppError as exc:
            checks.append(
                _check(
                    "clock",
                    False,
                    f"No {timeframe.value} bars of {name} can be served: {exc.detail}",
                    "Import them (POST /api/v1/market-data/imports) or deploy a strategy on other symbols.",
                )
            )
            continue
        first, last = served.base.start_ns, served.base.end_ns
        if first is None or last is None:
            continue
        history[symbol] = _bars_before(
            principal, settings, market, symbol, timeframe, start_ns, max(warmup or 0, 1)
        )
        span = f"{iso(first)[:10]} to {iso(last)[:10]}"
        if replay:
            inside = first <= start_ns <= last
            checks.append(
                _check(
                    "clock",
                    inside,
                    f"{name}: the stored bars ({span}) cover the replay start {iso(start_ns)[:16]}."
                    if inside
                    else f"{name}: the stored bars run from {span}; the replay start {iso(start_ns)[:16]} is "
                    "outside them.",
                    "Choose a replay start inside that span.",
                )
            )
        else:
            published = _realtime_published(settings, market, symbol, timeframe)
            checks.append(
                _check(
                    "clock",
                    published,
                    f"{name}: new {timeframe.value} bars are published for the realtime clock."
                    if published
                    else f"{name}: this server publishes no realtime bars of it (it is offline and the symbol "
                    "is not in MARKET_DATA_REALTIME_SYMBOLS).",
                    "Use the replay clock instead.",
                )
            )
    return _MarketFacts(checks, history)


async def _domain_checks(
    uow: UnitOfWork, principal: Principal, deployment: Deployment, history_bars: dict[str, int]
) -> list[ReadinessCheck]:
    accounts = AccountRepository(uow.session, principal.user_id)
    account = await accounts.get(deployment.account_id)
    cash = (await account_state(accounts, account.id)).cash
    free = cash - float(await accounts.allocated_capital(account.id, excluding=deployment.id))
    verdict = domain_readiness(
        document=deployment.document,
        pinned_revision=deployment.strategy_version,
        history_bars=history_bars,
        account=PaperAccount(
            account_id=str(account.id),
            currency=account.currency,
            status="active" if account.status == "active" else "inactive",
        ),
        capital=float(deployment.capital),
        available_cash=free,
        limits=RiskLimits.model_validate(deployment.risk_limits).for_runtime(),
        assumptions=execution_assumptions(account, deployment.market),
    )
    return [_check(item.code, item.ok, item.message, item.hint) for item in verdict.items]


async def _kill_switch_checks(uow: UnitOfWork, deployment: Deployment) -> list[ReadinessCheck]:
    switches = await KillSwitchRepository(uow.session).in_force_for_deployment(deployment)
    if not switches:
        return [_check("kill_switch", True, "No kill switch is on.")]
    return [
        _check(
            "kill_switch",
            False,
            f"A {switch.scope} kill switch is on ({switch.reason}).",
            "Only an operator can clear it."
            if switch.scope == "global"
            else f"Clear it (DELETE /api/v1/kill-switch/{switch.id}) before starting.",
        )
        for switch in switches
    ]


async def check_readiness(
    uow: UnitOfWork, principal: Principal, settings: Settings, deployment: Deployment
) -> ReadinessOut:
    warmup = _warmup_bars(deployment)
    market = await asyncio.to_thread(_market_facts, principal, settings, deployment, warmup)
    checks = [
        _status_check(deployment),
        *await _strategy_checks(uow, principal, deployment),
        *await _domain_checks(uow, principal, deployment, market.history_bars),
        *market.checks,
        *await _kill_switch_checks(uow, deployment),
    ]
    problems = [" ".join(filter(None, (c.message, c.hint))) for c in checks if not c.ok]
    return ReadinessOut(deployment_id=deployment.id, ready=not problems, problems=problems, checks=checks)
