"""Readiness: what a deployment needs before it can start, each item in words a user understands.

``check_readiness`` answers every item, met or not, so a user sees the whole list at once:

* ``strategy_valid``: the strategy compiles (the number of problems otherwise);
* ``strategy_pinned``: the deployment runs one confirmed revision, not whatever is saved later;
* ``symbols_have_data``: every symbol of the universe has bars;
* ``warmup_history``: each symbol has at least the strategy's warm-up of bars before the start
  (without them its indicators are not defined and it could not enter at first);
* ``supported_features``: the strategy and its execution assumptions use only what paper trading
  reproduces (``unsupported_features``);
* ``account_active``: the account is an active paper account (live trading is not offered yet);
* ``enough_cash``: the allocated capital is positive and the account has it available;
* ``limits_sane``: the risk limits are usable and let the strategy trade its universe.

``unsupported_features`` names what paper trading refuses and why: filling market orders at the
signal bar's close (``trade_on_close``: a close is only known once the bar is over, too late to
trade it) and short borrow fees (``borrow_rate``: the paper ledger does not charge them, so results
would differ from the backtest). Everything else the engine simulates, rotation included, the paper
runtime reproduces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from packages.domain.backtest.assumptions import ExecutionAssumptions
from packages.domain.strategy.compiler import CompiledStrategy, compile_strategy
from packages.domain.strategy.errors import StrategyValidationError
from packages.domain.trading.broker import Account, PaperAccount
from packages.domain.trading.risk import RiskLimits


@dataclass(frozen=True)
class ReadinessItem:
    code: str
    ok: bool
    message: str
    hint: str | None = None


@dataclass(frozen=True)
class Readiness:
    items: tuple[ReadinessItem, ...]

    @property
    def ready(self) -> bool:
        return all(item.ok for item in self.items)

    @property
    def missing(self) -> tuple[ReadinessItem, ...]:
        return tuple(item for item in self.items if not item.ok)


def unsupported_features(assumptions: ExecutionAssumptions) -> list[str]:
    """What of ``assumptions`` paper trading cannot reproduce, one sentence each (empty: all is supported)."""
    found = []
    if assumptions.trade_on_close:
        found.append(
            "Filling market orders at the signal bar's close (trade_on_close): a deployment only learns "
            "a bar's close once the bar is over, so it trades at the next bar's open instead."
        )
    if assumptions.borrow_rate > 0:
        found.append(
            "Short borrow fees (borrow_rate): the paper ledger does not charge them, so paper results "
            "would not match the backtest; set the borrow rate to 0."
        )
    return found


def check_readiness(
    *,
    document: Mapping[str, Any],
    pinned_revision: int | None,
    history_bars: Mapping[str, int],
    account: Account,
    capital: float,
    available_cash: float,
    limits: RiskLimits,
    assumptions: ExecutionAssumptions,
) -> Readiness:
    """Every readiness item of a deployment of ``document`` (see the module docstring).

    ``history_bars`` counts each symbol's bars before the deployment's start (a symbol missing from
    it has none); ``available_cash`` is what the account has not allocated to other deployments.
    """
    items: list[ReadinessItem] = []
    strategy: CompiledStrategy | None = None
    try:
        strategy = compile_strategy(document)
        items.append(ReadinessItem("strategy_valid", True, "The strategy is valid."))
    except StrategyValidationError as exc:
        count = len(exc.issues)
        items.append(
            ReadinessItem(
                "strategy_valid",
                False,
                f"The strategy has {count} problem{'s' if count != 1 else ''} and cannot run.",
                "Validate the strategy and fix what it reports.",
            )
        )
    if pinned_revision is not None:
        items.append(
            ReadinessItem("strategy_pinned", True, f"The deployment runs revision {pinned_revision}.")
        )
    else:
        items.append(
            ReadinessItem(
                "strategy_pinned",
                False,
                "No strategy revision is pinned: the deployment would not know which version to run.",
                "Deploy a saved, confirmed revision of the strategy.",
            )
        )
    if strategy is not None:
        symbols = strategy.symbols
        missing = [s for s in symbols if history_bars.get(s, 0) <= 0]
        if missing:
            items.append(
                ReadinessItem(
                    "symbols_have_data",
                    False,
                    f"No market data for {', '.join(missing)}.",
                    "Sync market data for these symbols first.",
                )
            )
        else:
            items.append(ReadinessItem("symbols_have_data", True, "Every symbol has market data."))
        need = strategy.warmup_bars
        short = [s for s in symbols if 0 < history_bars.get(s, 0) < need]
        if short:
            items.append(
                ReadinessItem(
                    "warmup_history",
                    False,
                    f"The indicators need {need} bars of history before the start; "
                    f"{', '.join(f'{s} has {history_bars[s]}' for s in short)}.",
                    "Start later, or sync more history.",
                )
            )
        elif not missing:
            items.append(
                ReadinessItem("warmup_history", True, f"Every symbol has the {need} warm-up bars needed.")
            )
        allowed = limits.allowed_symbols
        if allowed is not None and not set(symbols) <= allowed:
            outside = sorted(set(symbols) - allowed)
            limit_problems = [
                f"The allowed symbols leave out {', '.join(outside)}, which the strategy trades."
            ]
        else:
            limit_problems = []
    else:
        limit_problems = []
    unsupported = unsupported_features(assumptions)
    if unsupported:
        items.append(
            ReadinessItem(
                "supported_features",
                False,
                "Paper trading cannot reproduce: " + " ".join(unsupported),
                "Change the execution assumptions.",
            )
        )
    else:
        items.append(
            ReadinessItem("supported_features", True, "Paper trading supports everything the strategy uses.")
        )
    if not isinstance(account, PaperAccount):
        items.append(
            ReadinessItem(
                "account_active",
                False,
                "The account is a live account; deployments run on paper accounts for now.",
                "Choose a paper account.",
            )
        )
    elif account.status != "active":
        items.append(
            ReadinessItem(
                "account_active",
                False,
                "The account is deactivated.",
                "Reactivate it or choose another account.",
            )
        )
    else:
        items.append(ReadinessItem("account_active", True, "The paper account is active."))
    if not capital > 0:
        items.append(
            ReadinessItem(
                "enough_cash", False, "The allocated capital must be a positive amount.", "Set the capital."
            )
        )
    elif capital > available_cash:
        items.append(
            ReadinessItem(
                "enough_cash",
                False,
                f"The account has {available_cash:,.2f} available, less than the {capital:,.2f} to allocate.",
                "Allocate less, or free capital from other deployments.",
            )
        )
    else:
        items.append(ReadinessItem("enough_cash", True, f"{capital:,.2f} is available to allocate."))
    problems = [*limits.problems(), *limit_problems]
    notional = limits.max_position_notional
    if notional is not None and capital > 0 and notional * 1e4 < capital:
        problems.append(
            f"The maximum position value ({notional:,.2f}) is under 0.01% of the capital: almost no order would pass."
        )
    if problems:
        items.append(ReadinessItem("limits_sane", False, " ".join(problems), "Adjust the risk limits."))
    else:
        items.append(ReadinessItem("limits_sane", True, "The risk limits are usable."))
    return Readiness(tuple(items))
