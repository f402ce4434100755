"""Execution assumptions: every modelling choice the simulation makes, named, documented and echoed.

The defaults are deliberately conservative (costs on, no margin, fills only when price trades
*through* a resting limit, stop before target when a bar cannot tell them apart) so a result that
looks good under the defaults has not been flattered by the simulator.

Fill rules (the exact semantics every test in ``tests/packages/domain/backtest`` pins down):

* A signal is read at the close of its bar. A **market** order acting on it fills at the **next
  bar's open** (``trade_on_close=False``) or at the **signal bar's close** (``trade_on_close=True``).
* A **limit** entry (buy below / sell above the market) works from the bar after the signal for
  ``OrderPlan.valid_bars`` bars. A buy limit ``L`` fills at the open when the ask opens at or below
  ``L`` (a gap in your favour fills at the better open price), otherwise at ``L`` when the bar's ask
  low trades *below* ``L`` (or touches it when ``limit_fill_on_touch``). Sells mirror this on the bid.
* A **stop** entry (buy above / sell below the market) fills at the open when the bar opens through
  the stop (the worse-for-you open, as in a real gap), otherwise at the stop price when the bar's
  range reaches it. Slippage and spread are then applied against you.
* **Stop-loss, trailing and bracket stops** are checked intrabar against the bar's low (long) or high
  (short); a bar that *opens* through a stop fills at the open, not at the stop.
* **Take-profit targets** are resting limits: they fill at the target when the bid high (long) trades
  through it, at the open when the bar opens beyond it.
* When a stop and a target both lie inside one bar, the **stop is assumed first** unless finer bars
  are supplied, in which case the finer bars are walked in time order (and within one finer bar the
  stop again wins). On the bar a limit or stop *entry* fills intrabar, only the stop side of the new
  position is checked (the part of the bar after the fill is unknown; the stop is the conservative
  reading); targets start on the next bar.
* Trailing stops ratchet on the open first, then are checked against the bar's range, and only then
  ratchet on the bar's high (long) / low (short): the bar's extreme is never assumed to precede its
  opposite extreme.
* Signal exits and time exits are market orders decided at a bar's close. Exits are processed before
  entries at the same instant, so freed cash is available to entries at the same open.

Ranges and warm-up (``pipeline``, the one path every backtest takes: jobs, sweeps, stress tests):

* A backtest simulates a **range** of bars and reads the bars before it as **warm-up history**:
  indicators and conditions are computed over history and range together, so they are warm on the
  range's first bar, and the account starts flat with ``initial_cash`` on that bar. Nothing before
  the range trades, and bars after it change nothing (every series is causal).
* Every metric, the equity and drawdown curves, the trades, the benchmark comparison, the data hash
  and ``periods_per_year`` (when inferred) cover exactly the range. A job reads as many bars of
  history before ``start`` as the strategy's warm-up needs; when fewer exist, the first bars of the
  range cannot enter and the result carries a warning.

Units (one rule for every output: metrics, trade rows, analysis views, trade snapshots, the REST API
and the MCP tools):

* Every return, drawdown, excursion, rate and share a backtest **reports** is a **fraction**:
  ``0.0123`` means 1.23%, never a percent. Names carry no unit suffix and none ends in ``_pct``:
  ``total_return``, ``annual_return``, ``annual_volatility``, ``max_drawdown``, ``win_rate``,
  ``exposure``, ``fees_to_gross_profit``, ``avg_trade_return`` (the mean of the closed trades'
  ``trade_return``), ``best_trade_return``; per trade ``trade_return`` (pnl / (quantity x entry price)),
  ``mae`` and ``mfe`` (the worst move against and the best move in favour of the position, as
  fractions of the entry price; ``mae`` <= 0 <= ``mfe``); the analysis views' returns, volatilities,
  drawdown depths and ``avg_trade_return``. Ratios (``sharpe``, ``profit_factor``, ``payoff_ratio``,
  leverage) are plain numbers, money is in account currency (``pnl``, ``fees_paid``, ``final_equity``)
  and durations are in bars or days as their names say (``_bars``, ``_days``).
* **Inputs** keep the units they are written in. The strategy DSL writes percentages in percent: a stop
  ``{"unit": "percent", "value": 2}`` is 2% from the entry, ``"sizing": {"mode": "risk_per_trade",
  "percent": 1}`` risks 1% of equity. The costs below are in basis points (``fee_bps`` 10 = 0.1%), and
  the annual rates below are fractions (``borrow_rate`` 0.02 = 2% a year).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SlippageModel = Literal["bps", "volume_share"]


class ExecutionAssumptions(BaseModel):
    """How orders are filled and charged. Echoed verbatim in every backtest result."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    initial_cash: float = Field(
        default=100_000.0, gt=0, description="Starting cash in account currency, shared by every symbol."
    )
    trade_on_close: bool = Field(
        default=False,
        description=(
            "Fill market orders at the close of the signal bar instead of the next bar's open. Off by "
            "default: a close you only know once the bar is over cannot usually be traded."
        ),
    )
    fee_bps: float = Field(
        default=10.0,
        ge=0,
        description="Commission in basis points of traded notional, charged on every fill.",
    )
    fee_fixed: float = Field(
        default=0.0, ge=0, description="Fixed commission per filled order, in account currency."
    )
    slippage_model: SlippageModel = Field(
        default="bps",
        description=(
            "'bps': market and stop fills move against you by slippage_bps. 'volume_share': they move by "
            "volume_impact x (order quantity / bar volume), i.e. proportionally to the share of the "
            "bar's volume the order takes."
        ),
    )
    slippage_bps: float = Field(
        default=5.0, ge=0, description="Adverse price move per fill for slippage_model='bps'."
    )
    volume_impact: float = Field(
        default=0.1,
        ge=0,
        description=(
            "Price impact per unit of volume participation for slippage_model='volume_share' (0.1: "
            "taking 10% of a bar's volume costs 1%). A bar without volume counts as full participation."
        ),
    )
    spread_bps: float = Field(
        default=0.0,
        ge=0,
        description=(
            "Full bid/ask spread in basis points around the bar prices (taken as mid prices). Buys pay "
            "half of it, sells receive half less; limit orders must be reached by the ask (buys) or the "
            "bid (sells). Zero by default because slippage_bps already prices a liquid market's crossing."
        ),
    )
    limit_fill_on_touch: bool = Field(
        default=False,
        description=(
            "Fill resting limits (limit entries, take-profit targets) when price merely touches the "
            "limit. Off by default: a touch does not guarantee your place in the queue was reached."
        ),
    )
    allow_margin: bool = Field(
        default=False,
        description="Allow gross exposure above equity (up to margin_leverage). Off: no leverage.",
    )
    margin_leverage: float = Field(
        default=2.0, ge=1.0, description="Maximum gross exposure / equity when allow_margin is on."
    )
    borrow_rate: float = Field(
        default=0.0,
        ge=0,
        description=(
            "Annual borrow fee on short notional (marked at each close), charged per bar; a fraction "
            "(0.02 = 2% a year)."
        ),
    )
    quantity_step: float = Field(
        default=0.0,
        ge=0,
        description="Order quantities are rounded down to a multiple of this (1 = whole shares; 0 = fractional).",
    )
    close_at_end: bool = Field(
        default=True,
        description=(
            "Close positions still open after the last bar at its close (paying the exit costs, exit "
            "reason 'end_of_data'). Off: they stay open, marked to the last close, and are reported as open."
        ),
    )
    risk_free_rate: float = Field(
        default=0.0,
        description="Annual risk-free rate subtracted from returns in Sharpe and Sortino; a fraction (0.02 = 2%).",
    )
    periods_per_year: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Bars per year for annualisation; None infers it from the bar timestamps "
            "(bars observed / calendar years spanned), which gives ~252 for exchange-traded daily bars."
        ),
    )

    def fee_rate(self) -> float:
        return self.fee_bps * 1e-4

    def half_spread(self) -> float:
        return self.spread_bps * 0.5e-4
