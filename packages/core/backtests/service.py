"""Backtest use-cases: submit a job (idempotent, capped), follow it, cancel it, read its result."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import Any

from packages.core.backtests.repository import BacktestJobRepository
from packages.core.backtests.results import (
    RESULTS,
    StoredResult,
    decode_result,
    order_rows,
    readable,
    series,
    trade_rows,
)
from packages.core.backtests.runs import resolve_strategy_run
from packages.core.backtests.schemas import (
    AnalysisOut,
    AnalysisView,
    BacktestCompact,
    BacktestDetail,
    BacktestList,
    BacktestListItem,
    BacktestOut,
    CreateBacktestRequest,
    EquityOut,
    JobRequest,
    LeafTruth,
    OrderPage,
    SnapshotBar,
    TradePage,
    TradeSnapshotOut,
)
from packages.core.errors import Conflict, NotFound
from packages.core.idempotency import IdempotencyKey
from packages.core.jobs.lifecycle import JobLifecycle
from packages.core.jobs.schemas import CancelOut
from packages.core.jobs.submit import ActiveCap, Submission, submit_job
from packages.core.principal import Principal
from packages.core.resources import Resources
from packages.core.uow import UnitOfWork
from packages.domain.backtest.analytics import VIEWS
from packages.domain.backtest.metrics import BENCHMARK_METRICS
from packages.domain.backtest.snapshot_context import rebuild_trade_snapshot
from packages.infra.db.models import BacktestJob

LIFECYCLE = JobLifecycle(BacktestJob)
TASK_NAME = "backtest.run"

KEY_METRICS = (
    "total_return",
    "annual_return",
    "annual_volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_duration_days",
    "final_equity",
    "net_profit",
    "win_rate",
    "profit_factor",
    "expectancy",
    "payoff_ratio",
    "sqn",
    "avg_holding_days",
    "exposure",
    "fees_paid",
    "benchmark_return",
    "alpha",
    "beta",
)

VIEW_DESCRIPTIONS: dict[str, str] = {
    "monthly_returns": "Return of each calendar month and year (UTC), from month-end equity.",
    "pnl_by_entry_hour": "Closed trades grouped by the UTC hour of their entry bar.",
    "pnl_by_entry_weekday": "Closed trades grouped by the UTC weekday of their entry bar.",
    "holding_period_bins": "Closed trades binned by holding time in bars.",
    "long_short": "Closed trades split into long and short.",
    "exit_reasons": "Closed trades grouped by exit reason (exit rule name or engine reason).",
    "per_symbol": "Closed trades grouped by symbol.",
    "underwater": "Drawdown series (downsampled, extremes kept) and the deepest drawdown episodes.",
    "rolling": "Rolling return, annualised volatility and Sharpe over a window of return periods.",
}
_VIEWS_WITH_POINTS = frozenset({"underwater", "rolling"})


def _metric(value: Any) -> float | int | str | bool | None:
    return value if value is None or isinstance(value, float | int | str | bool) else str(value)


def compact_summary(summary: Mapping[str, Any]) -> BacktestCompact:
    metrics = summary.get("metrics", {})
    key_metrics = {name: _metric(metrics.get(name)) for name in KEY_METRICS}
    benchmark = summary.get("benchmark")
    if benchmark:
        key_metrics["benchmark_symbol"] = benchmark["symbol"]
        for name in ("benchmark_return", "alpha", "beta"):
            key_metrics[name] = _metric(benchmark.get(name))
    counts = summary.get("counts", {})
    covered = summary.get("range", {})
    return BacktestCompact(
        key_metrics=key_metrics,
        trades=int(counts.get("trades", 0)),
        orders=int(counts.get("orders", 0)),
        bars=int(counts.get("bars", 0)),
        symbols=list(summary.get("symbols", [])),
        start=covered.get("start"),
        end=covered.get("end"),
        warnings=list(summary.get("warnings", [])),
        provenance=dict(summary.get("provenance", {})),
    )


def _job_request(job: BacktestJob) -> JobRequest:
    return JobRequest.model_validate(job.request)


class BacktestService:
    def __init__(self, uow: UnitOfWork, principal: Principal, resources: Resources) -> None:
        self.uow = uow
        self.principal = principal
        self.settings = resources.settings
        self.config = resources.settings.backtests
        self.repo = BacktestJobRepository(uow.session, principal.user_id)

    # --- submitting ------------------------------------------------------------------------------

    async def create(
        self, body: CreateBacktestRequest, idempotency_key: IdempotencyKey | None
    ) -> tuple[BacktestOut, bool]:
        """Submit a job; returns it and whether it is new (False: the same key and body came before)."""

        async def build() -> BacktestJob:
            job_request, strategy_version = await resolve_strategy_run(
                self.uow, self.principal, self.settings, body
            )
            return BacktestJob(
                user_id=self.principal.user_id,
                status="queued",
                progress=0.0,
                progress_message="queued",
                request=job_request.model_dump(mode="json"),
                strategy_id=body.strategy_id,
                strategy_version=strategy_version,
            )

        submission = Submission(
            task_name=TASK_NAME,
            plural="backtests",
            id_field="backtest_id",
            cap=ActiveCap(self.config.max_active_jobs_per_user, self.config.retry_after_s),
        )
        job, created = await submit_job(self.uow, self.repo, submission, body, idempotency_key, build)
        return self._out(job), created

    # --- following -------------------------------------------------------------------------------

    async def list(self, *, limit: int, cursor: str | None, status: str | None) -> BacktestList:
        page = await self.repo.page(limit=limit, cursor=cursor, status=status)
        items = []
        for job in page.rows:
            request = _job_request(job)
            metrics = (job.summary or {}).get("metrics", {})
            items.append(
                BacktestListItem(
                    id=job.id,
                    status=job.status,
                    progress=job.progress,
                    created_at=job.created_at,
                    finished_at=job.finished_at,
                    strategy_id=job.strategy_id,
                    strategy_version=job.strategy_version,
                    strategy_name=request.strategy_name,
                    market=request.market,
                    symbols=request.symbols,
                    timeframe=request.timeframe,
                    total_return=metrics.get("total_return"),
                    trades=(job.summary or {}).get("counts", {}).get("trades"),
                )
            )
        return BacktestList(items=items, next_cursor=page.next_cursor)

    async def get(self, job_id: uuid.UUID) -> BacktestDetail:
        job = await self.repo.get(job_id)
        out = self._out(job)
        metrics = _compared_metrics(job.summary) if job.status == "succeeded" and job.summary else None
        return BacktestDetail(**out.model_dump(), metrics=metrics)

    async def cancel(self, job_id: uuid.UUID) -> CancelOut:
        job = await self.repo.get(job_id, for_update=True)
        return await LIFECYCLE.cancel(self.uow.session, job, "backtest")

    # --- results ---------------------------------------------------------------------------------

    async def _stored(self, job_id: uuid.UUID) -> StoredResult:
        job = await self.repo.get(job_id)
        if job.status != "succeeded" or job.summary is None or job.result_hash is None:
            raise Conflict(
                f"The backtest is {job.status}; results exist once it has succeeded.",
                extra={"status": job.status},
            )
        key = (job.id, job.result_hash)
        stored = RESULTS.get(key)
        if stored is None:
            artifacts = await self.repo.artifacts(job.id)
            if artifacts is None:
                raise Conflict("The backtest's stored arrays are missing; run it again.")
            stored = await asyncio.to_thread(decode_result, job.summary, artifacts)
            RESULTS.put(key, stored)
        return stored

    async def equity(self, job_id: uuid.UUID) -> EquityOut:
        stored = await self._stored(job_id)
        result = stored.result
        chart = result.chart
        return EquityOut(
            id=job_id,
            points=int(chart.equity_bars.shape[0]),
            initial_cash=result.assumptions.initial_cash,
            equity=series(result.index, chart.equity_bars, chart.equity),
            drawdown=series(result.index, chart.drawdown_bars, chart.drawdown),
        )

    async def trades(self, job_id: uuid.UUID, *, offset: int, limit: int) -> TradePage:
        result = (await self._stored(job_id)).result
        total = result.n_trades
        stop = min(offset + limit, total)
        items = await asyncio.to_thread(trade_rows, result, min(offset, total), stop)
        return TradePage(total=total, offset=offset, limit=limit, items=items)

    async def orders(self, job_id: uuid.UUID, *, offset: int, limit: int) -> OrderPage:
        result = (await self._stored(job_id)).result
        total = int(result.orders.shape[0])
        stop = min(offset + limit, total)
        items = await asyncio.to_thread(order_rows, result, min(offset, total), stop)
        return OrderPage(total=total, offset=offset, limit=limit, items=items)

    async def analysis(
        self, job_id: uuid.UUID, view: AnalysisView, *, points: int, window: int
    ) -> AnalysisOut:
        result = (await self._stored(job_id)).result
        function = VIEWS[view]

        def render() -> Any:
            if view == "rolling":
                return readable(function(result, window=window, max_points=points))  # type: ignore[call-arg]
            if view in _VIEWS_WITH_POINTS:
                return readable(function(result, max_points=points))  # type: ignore[call-arg]
            return readable(function(result))

        data = await asyncio.to_thread(render)
        return AnalysisOut(id=job_id, view=view, description=VIEW_DESCRIPTIONS[view], data=data)

    async def trade_snapshot(
        self, job_id: uuid.UUID, number: int, *, bars_before: int, bars_after: int
    ) -> TradeSnapshotOut:
        stored = await self._stored(job_id)
        result = stored.result
        if number >= result.n_trades:
            raise NotFound(f"Backtest {job_id} has {result.n_trades} trades; there is no trade {number}.")
        snapshot_info = stored.summary.get("snapshot", {})
        kept = int(snapshot_info.get("trades_kept", 0))
        if number >= kept:
            raise Conflict(
                f"This backtest kept snapshot data for its first {kept} of {result.n_trades} trades "
                f"(BACKTEST_SNAPSHOT_MAX_VALUES); trade {number} has no snapshot. Its row in /trades "
                "and the market-data bars around it are still available."
            )
        context = int(snapshot_info.get("context_bars", 0))
        labels: dict[str, str] = dict(snapshot_info.get("leaf_labels", {}))
        raw = await asyncio.to_thread(
            rebuild_trade_snapshot,
            result,
            stored.blobs,
            labels,
            number,
            bars_before=min(bars_before, context),
            bars_after=min(bars_after, context),
        )
        trade = (await asyncio.to_thread(trade_rows, result, number, number + 1))[0]
        return TradeSnapshotOut(
            id=job_id, trade=trade, bars=_snapshot_bars(raw), leaves=_leaf_truths(raw, labels)
        )

    # --- rendering -------------------------------------------------------------------------------

    def _out(self, job: BacktestJob) -> BacktestOut:
        request = _job_request(job)
        return BacktestOut(
            **BacktestOut.fields_of(job, request),
            start=request.start,
            end=request.end,
            assumptions=request.assumptions.model_dump(mode="json"),
            benchmark=request.benchmark,
            result_hash=job.result_hash,
            summary=compact_summary(job.summary) if job.status == "succeeded" and job.summary else None,
        )


def _compared_metrics(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Every metric, with the benchmark ones measured against the benchmark the request named (the
    engine measures them against the universe's own buy and hold, which stays the default)."""
    metrics = dict(summary.get("metrics", {}))
    benchmark = summary.get("benchmark")
    if benchmark:
        metrics.update({name: benchmark.get(name) for name in BENCHMARK_METRICS})
    metrics["benchmark_symbol"] = benchmark["symbol"] if benchmark else None
    return metrics


def _snapshot_bars(raw: Mapping[str, Any]) -> list[SnapshotBar]:
    window = raw["window"]
    marks: dict[int, list[str]] = {}
    for part, prefix in (("entry", "entry"), ("exit", "exit")):
        marks.setdefault(int(raw[part]["signal_bar"]), []).append(f"{prefix}_signal")
        marks.setdefault(int(raw[part]["bar"]), []).append(prefix)
    times = readable({"time": window["time"]})["time"]
    factors = raw["factors"]
    return [
        SnapshotBar(
            bar=bar,
            time=times[k],
            open=readable(window["open"][k]),
            high=readable(window["high"][k]),
            low=readable(window["low"][k]),
            close=readable(window["close"][k]),
            volume=readable(window["volume"][k]),
            factors={name: readable(values[k]) for name, values in factors.items()},
            marks=marks.get(bar, []),
        )
        for k, bar in enumerate(window["bar"])
    ]


def _leaf_truths(raw: Mapping[str, Any], labels: Mapping[str, str]) -> list[LeafTruth]:
    at_entry = {leaf["leaf"]: leaf["value"] for leaf in raw.get("leaves_at_entry", [])}
    at_exit = {leaf["leaf"]: leaf["value"] for leaf in raw.get("leaves_at_exit", [])}
    return [
        LeafTruth(
            pointer=pointer,
            label=labels.get(pointer, pointer),
            at_entry_signal=at_entry.get(pointer),
            at_exit_signal=at_exit.get(pointer),
        )
        for pointer in sorted(set(at_entry) | set(at_exit) | set(labels))
    ]
