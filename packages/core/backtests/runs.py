"""From a request naming a strategy and a range to what a job runs: the document (a saved
strategy's revision is copied, so the job runs the version it was asked for), checked, with its
symbols and bars resolved as the user. Backtests and every stress test submit through it."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from packages.core.backtests.schemas import JobRequest, StrategyRunRequest
from packages.core.errors import FieldError, NotFound, ValidationFailed
from packages.core.market_data.universe import resolve_universe, to_ns
from packages.core.principal import Principal
from packages.core.schemas import find_unstorable_text
from packages.core.strategies.service import StrategyService
from packages.core.uow import UnitOfWork
from packages.domain.backtest.result import iso_times
from packages.domain.strategy.canonical import document_hash
from packages.domain.strategy.validation import validate_strategy
from packages.shared_settings import Settings


async def resolve_strategy_run(
    uow: UnitOfWork, principal: Principal, settings: Settings, body: StrategyRunRequest
) -> tuple[JobRequest, int | None]:
    """The job request of ``body`` and the strategy version it runs (None for an inline document);
    raises ``ValidationFailed`` with pointers into the request."""
    document, version = await _document(uow, principal, body)
    return await _resolve(settings, principal, body, document), version


def _iso(ns: int | None) -> str:
    return "?" if ns is None else iso_times(np.array([ns], dtype=np.int64))[0]


async def _document(
    uow: UnitOfWork, principal: Principal, body: StrategyRunRequest
) -> tuple[dict[str, Any], int | None]:
    if body.strategy_id is None:
        assert body.document is not None
        return body.document, None
    try:
        revision = await StrategyService(uow, principal).current_document(body.strategy_id, body.version)
    except NotFound as exc:
        pointer = "/version" if body.version is not None else "/strategy_id"
        raise ValidationFailed(exc.detail, errors=[FieldError("not_found", pointer, exc.detail)]) from exc
    return revision.document, revision.version


async def _resolve(
    settings: Settings, principal: Principal, body: StrategyRunRequest, document: dict[str, Any]
) -> JobRequest:
    inline = body.document is not None

    def pointer(inner: str) -> str:
        # Problems in a saved strategy's document point at the strategy the request names.
        return "/document" + inner if inline else "/strategy_id"

    issues = validate_strategy(document)
    if issues:
        raise ValidationFailed(
            f"The strategy document has {len(issues)} problem(s); fix each at its pointer.",
            errors=[FieldError(i.code.value, pointer(i.pointer), i.message, i.hint) for i in issues],
        )
    # Checked after validation, which bounds the document's depth.
    unstorable = find_unstorable_text(document)
    if unstorable is not None:
        raise ValidationFailed(
            "The strategy document holds text that cannot be stored.",
            errors=[FieldError(unstorable.code, pointer(unstorable.pointer), unstorable.message)],
        )
    market = str(document["universe"]["market"])
    symbols = [str(s) for s in document["universe"]["symbols"]]
    timeframe = str(document["timeframe"])
    if len(symbols) > settings.backtests.max_symbols:
        raise ValidationFailed(
            f"The universe has {len(symbols)} symbols; a backtest takes at most {settings.backtests.max_symbols}.",
            errors=[FieldError("too_many_symbols", pointer("/universe/symbols"), "use fewer symbols")],
        )
    source = await asyncio.to_thread(
        resolve_universe,
        settings,
        principal.user_id,
        market,
        symbols,
        timeframe,
        symbol_pointer=lambda i: pointer(f"/universe/symbols/{i}"),
        timeframe_pointer=pointer("/timeframe"),
    )
    if body.benchmark is not None:
        await asyncio.to_thread(
            resolve_universe,
            settings,
            principal.user_id,
            market,
            [body.benchmark],
            timeframe,
            symbol_pointer=lambda _: "/benchmark",
            timeframe_pointer="/benchmark",
        )
    start_ns, end_ns = to_ns(body.start), to_ns(body.end)
    estimate = source.estimated_cells(start_ns, end_ns)
    if estimate == 0:
        first, last = source.coverage()
        raise ValidationFailed(
            "The range holds no bars of the strategy's symbols.",
            errors=[
                FieldError(
                    "empty_range",
                    "/start" if body.start is not None else "/end",
                    f"stored data covers {_iso(first)} to {_iso(last)}",
                )
            ],
        )
    if estimate > settings.backtests.max_bars_per_job:
        raise ValidationFailed(
            f"The range holds about {estimate} bars x symbols; a backtest may simulate at most "
            f"{settings.backtests.max_bars_per_job}. Shorten the range or the universe.",
            errors=[
                FieldError(
                    "too_many_bars",
                    "/start",
                    f"about {estimate} bars x symbols, at most {settings.backtests.max_bars_per_job}",
                )
            ],
        )
    return JobRequest(
        document=document,
        document_hash=document_hash(document),
        market=market,
        symbols=symbols,
        timeframe=timeframe,
        start=body.start,
        end=body.end,
        assumptions=body.assumptions,
        benchmark=body.benchmark,
        estimated_bars=estimate,
    )
