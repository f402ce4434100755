"""Crisis windows: the strategy replayed over named periods of market stress.

Each window is a date range (UTC, start inclusive, end exclusive) and the markets it applies to.
The strategy runs over the window with its usual warm-up history before it, so indicators are warm
on the window's first bar; the metrics cover the window alone. Per window: total return, max
drawdown, closed trades, Sharpe ratio, the benchmark's return (buy and hold of the strategy's
symbols, equally weighted, or the benchmark symbol asked for) and pass or fail against the
thresholds. A window the stored data does not cover is reported as ``no_data`` with the coverage
it would need; one covered only in part runs on what there is and says so (``partial``).

The aggregate score is the share of evaluated windows passed, 0 to 100.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

MarketName = Literal["us_stocks", "crypto", "forex", "futures"]
_TRADITIONAL: tuple[MarketName, ...] = ("us_stocks", "futures", "forex")


@dataclass(frozen=True)
class CrisisWindow:
    id: str
    name: str
    start: date
    end: date  # exclusive
    markets: tuple[MarketName, ...]
    description: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "markets": list(self.markets),
            "description": self.description,
        }


CRISIS_WINDOWS: tuple[CrisisWindow, ...] = (
    CrisisWindow(
        "dotcom_top_2000",
        "Dot-com top",
        date(2000, 2, 1),
        date(2000, 6, 1),
        ("us_stocks", "futures"),
        "The NASDAQ Composite peaked on 10 March 2000 and lost a third by late May.",
    ),
    CrisisWindow(
        "september_11_2001",
        "11 September 2001",
        date(2001, 9, 1),
        date(2001, 11, 1),
        _TRADITIONAL,
        "US markets closed for four sessions after the attacks and reopened on 17 September with the "
        "largest one-week fall since 1933.",
    ),
    CrisisWindow(
        "financial_crisis_2008",
        "2008 financial crisis",
        date(2008, 9, 1),
        date(2009, 4, 1),
        _TRADITIONAL,
        "From Lehman Brothers' bankruptcy (15 September 2008) to the equity low of 9 March 2009.",
    ),
    CrisisWindow(
        "flash_crash_2010",
        "Flash crash",
        date(2010, 5, 1),
        date(2010, 6, 1),
        ("us_stocks", "futures"),
        "On 6 May 2010 US indices fell about 9% and recovered within minutes.",
    ),
    CrisisWindow(
        "us_downgrade_2011",
        "US credit downgrade",
        date(2011, 7, 22),
        date(2011, 10, 5),
        _TRADITIONAL,
        "S&P cut the US rating on 5 August 2011; the S&P 500 fell about 19% from July to early October.",
    ),
    CrisisWindow(
        "china_selloff_2015",
        "August 2015 selloff",
        date(2015, 8, 10),
        date(2015, 10, 1),
        _TRADITIONAL,
        "The yuan devaluation and China's equity slide led to the 24 August 2015 open, when the Dow "
        "fell 1,000 points in minutes.",
    ),
    CrisisWindow(
        "volatility_spike_2018",
        "February 2018 volatility spike",
        date(2018, 1, 26),
        date(2018, 3, 1),
        ("us_stocks", "futures"),
        "The VIX doubled on 5 February 2018 ('Volmageddon') and short-volatility products collapsed.",
    ),
    CrisisWindow(
        "q4_2018",
        "Q4 2018 selloff",
        date(2018, 10, 1),
        date(2019, 1, 1),
        _TRADITIONAL,
        "Rate-hike and trade-war fears took the S&P 500 down almost 20% by 24 December 2018.",
    ),
    CrisisWindow(
        "covid_crash_2020",
        "COVID-19 crash",
        date(2020, 2, 19),
        date(2020, 5, 1),
        ("us_stocks", "futures", "forex", "crypto"),
        "From the S&P 500 high of 19 February 2020 through the 23 March low and the first rebound.",
    ),
    CrisisWindow(
        "rate_shock_2022",
        "2022 rate shock",
        date(2022, 1, 3),
        date(2022, 11, 1),
        ("us_stocks", "futures", "forex", "crypto"),
        "The fastest Federal Reserve tightening in decades; stocks and bonds fell together into October.",
    ),
    CrisisWindow(
        "crypto_winter_2018",
        "Crypto winter 2018",
        date(2018, 1, 1),
        date(2019, 1, 1),
        ("crypto",),
        "Bitcoin fell from about $17,000 to about $3,200 over 2018.",
    ),
    CrisisWindow(
        "crypto_winter_2022",
        "Crypto winter 2022",
        date(2022, 4, 1),
        date(2023, 1, 1),
        ("crypto",),
        "Bitcoin fell below $16,000 after the failures of Terra, Celsius, Three Arrows and FTX.",
    ),
    CrisisWindow(
        "luna_collapse_2022",
        "Terra (LUNA) collapse",
        date(2022, 5, 5),
        date(2022, 6, 1),
        ("crypto",),
        "The UST stablecoin lost its peg on 9 May 2022 and LUNA went to nearly zero within days.",
    ),
    CrisisWindow(
        "ftx_collapse_2022",
        "FTX collapse",
        date(2022, 11, 1),
        date(2022, 12, 1),
        ("crypto",),
        "FTX halted withdrawals on 8 November 2022 and filed for bankruptcy on 11 November.",
    ),
)
WINDOWS_BY_ID = {window.id: window for window in CRISIS_WINDOWS}


def windows_for(market: str, ids: Iterable[str] | None = None) -> list[CrisisWindow]:
    """The named windows that apply to ``market`` (all of them, or those with the given ids)."""
    chosen = [WINDOWS_BY_ID[i] for i in ids] if ids is not None else list(CRISIS_WINDOWS)
    return [w for w in chosen if ids is not None or market in w.markets]


@dataclass(frozen=True)
class Thresholds:
    """A window passes when its max drawdown is no deeper and its return no lower than these."""

    max_drawdown: float = -0.25
    min_return: float = -0.15

    def passes(self, total_return: float, max_drawdown: float) -> bool:
        return max_drawdown >= self.max_drawdown and total_return >= self.min_return


Coverage = Literal["full", "partial", "no_data"]


def coverage_of(
    window_start_ns: int, window_end_ns: int, data_start_ns: int | None, data_end_ns: int | None
) -> Coverage:
    """How the stored data (first bar open .. last bar open, inclusive) covers [start, end)."""
    if (
        data_start_ns is None
        or data_end_ns is None
        or data_end_ns < window_start_ns
        or data_start_ns >= window_end_ns
    ):
        return "no_data"
    return (
        "full"
        if data_start_ns <= window_start_ns and data_end_ns >= window_end_ns - 86_400 * 10**9
        else "partial"
    )


def buy_and_hold_return(closes: npt.NDArray[np.float64]) -> float | None:
    """Equal-weight buy and hold of the columns of ``closes`` (bars x symbols), first to last valid close."""
    returns = []
    for column in np.atleast_2d(closes.T):
        valid = column[np.isfinite(column)]
        if valid.shape[0] >= 2 and valid[0] > 0:
            returns.append(valid[-1] / valid[0] - 1.0)
    return float(np.mean(returns)) if returns else None


def aggregate(outcomes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Score (share of evaluated windows passed, 0..100), counts and the worst window."""
    evaluated = [o for o in outcomes if o["coverage"] != "no_data"]
    passed = [o for o in evaluated if o["passed"]]
    worst = min(evaluated, key=lambda o: o["max_drawdown"], default=None)
    excess = [
        o["total_return"] - o["benchmark_return"]
        for o in evaluated
        if o.get("benchmark_return") is not None and math.isfinite(o["benchmark_return"])
    ]
    return {
        "score": round(100.0 * len(passed) / len(evaluated), 1) if evaluated else None,
        "windows": len(outcomes),
        "evaluated": len(evaluated),
        "passed": len(passed),
        "no_data": len(outcomes) - len(evaluated),
        "worst_window": worst["window_id"] if worst else None,
        "worst_drawdown": worst["max_drawdown"] if worst else None,
        "mean_excess_return": float(np.mean(excess)) if excess else None,
    }


def describe(summary: dict[str, Any]) -> str:
    if not summary["evaluated"]:
        return (
            f"None of the {summary['windows']} crisis windows has stored data for this strategy's symbols; "
            "import or sync data for those periods to run them."
        )
    text = (
        f"Passed {summary['passed']} of {summary['evaluated']} crisis windows with data (score "
        f"{summary['score']:.0f}/100); the deepest drawdown was {summary['worst_drawdown']:.1%} in "
        f"{summary['worst_window']}."
    )
    if summary["no_data"]:
        text += f" {summary['no_data']} window(s) had no data and were not run."
    return text
