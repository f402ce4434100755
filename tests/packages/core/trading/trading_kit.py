"""What paper-trading tests share: a user with SYNTHETIC hourly bars of their own, a confirmed
strategy on them and a paper account; requests that go through confirmation."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd

SYMBOL = "SYNTH-PT"
FIRST_BAR = "2024-01-01 00:00"
BARS = 24 * 40  # forty days of hourly bars
# The strategy's SMA(30) needs 30 bars; this start leaves 9 days of history before it.
REPLAY_START = "2024-01-10T00:00:00Z"


def synthetic_hourly_csv(seed: int = 5) -> bytes:
    """SYNTHETIC hourly crypto bars (a seeded random walk, 24/7), for paper-trading plumbing only."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 4e-3, BARS)))
    open_ = np.concatenate(([100.0], close[:-1]))
    frame = pd.DataFrame(
        {
            "time": pd.date_range(FIRST_BAR, periods=BARS, freq="1h").strftime("%Y-%m-%d %H:%M:%S"),
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": rng.integers(10, 1000, BARS).astype(float),
        }
    )
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def strategy_document(symbol: str = SYMBOL) -> dict[str, Any]:
    return {
        "dsl_version": "1.0.0",
        "metadata": {"name": "SMA 10/30 on synthetic hourly bars"},
        "universe": {"market": "crypto", "symbols": [symbol]},
        "timeframe": "1h",
        "factors": [
            {"id": "fast", "indicator": "sma", "params": {"period": 10}},
            {"id": "slow", "indicator": "sma", "params": {"period": 30}},
        ],
        "trade": {
            "long": {
                "entry": {
                    "condition": {
                        "op": "cross_above",
                        "left": {"factor": "fast"},
                        "right": {"factor": "slow"},
                    }
                },
                "exits": [
                    {
                        "name": "fast_below_slow",
                        "type": "signal",
                        "condition": {
                            "op": "cross_below",
                            "left": {"factor": "fast"},
                            "right": {"factor": "slow"},
                        },
                    }
                ],
                "sizing": {"mode": "fixed_quantity", "quantity": 10},
            }
        },
    }


@dataclass
class Trader:
    """A registered user (``account``: the test Account with ``.headers``) with data, a confirmed
    strategy and a paper account of 100,000 USD."""

    account: Any
    strategy_id: str
    broker_account_id: str

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.account.headers)


async def new_trader(api: httpx.AsyncClient, make_account: Any, *, confirm_strategy: bool = True) -> Trader:
    account = await make_account()
    imported = await api.post(
        "/market-data/imports",
        data={
            "market": "crypto",
            "symbol": SYMBOL,
            "timeframe": "1h",
            "timezone": "UTC",
            "mapping": '{"ts": "time"}',
        },
        files={"file": ("bars.csv", synthetic_hourly_csv(), "text/csv")},
        headers=account.headers,
    )
    assert imported.status_code == 201, imported.text
    strategy = await api.post(
        "/strategies",
        json={"document": strategy_document(), "confirm": confirm_strategy},
        headers=account.headers,
    )
    assert strategy.status_code == 201, strategy.text
    broker = await api.post(
        "/broker-accounts", json={"name": "Paper", "starting_cash": 100_000}, headers=account.headers
    )
    assert broker.status_code == 201, broker.text
    return Trader(account, strategy.json()["id"], broker.json()["id"])


def deployment_body(trader: Trader, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "strategy_id": trader.strategy_id,
        "capital": 10_000,
        "clock": "replay",
        "replay_start": REPLAY_START,
        "replay_speed": 3600,
    }
    body.update(overrides)
    return body


async def confirm(api: httpx.AsyncClient, trader: Trader, preview: dict[str, Any]) -> dict[str, Any]:
    assert preview["status"] == "confirmation_required", preview
    response = await api.post(f"/confirmations/{preview['token']}", headers=trader.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def create_deployment(api: httpx.AsyncClient, trader: Trader, **overrides: Any) -> dict[str, Any]:
    """A pending deployment, created through its confirmation."""
    preview = await api.post(
        "/deployments", json=deployment_body(trader, **overrides), headers=trader.headers
    )
    assert preview.status_code == 202, preview.text
    confirmed = await confirm(api, trader, preview.json())
    return dict(confirmed["deployment"])


async def start_deployment(api: httpx.AsyncClient, trader: Trader, deployment_id: str) -> dict[str, Any]:
    preview = await api.post(f"/deployments/{deployment_id}/start", headers=trader.headers)
    assert preview.status_code == 202, preview.text
    return dict((await confirm(api, trader, preview.json()))["deployment"])


def user_uuid(trader: Trader) -> uuid.UUID:
    return uuid.UUID(trader.account.user_id)
