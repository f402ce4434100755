"""The strategy list: each summary describes the strategy's current revision, read in one query."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event

from packages.domain.strategy.examples import get_example

SUMMARY_FIELDS = ("market", "symbols", "timeframe", "current_version")


async def _create(api: httpx.AsyncClient, account: Any, slug: str) -> str:
    response = await api.post(
        "/strategies", json={"document": copy.deepcopy(get_example(slug))}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@contextmanager
def _statements(api_app: Any) -> Iterator[list[str]]:
    """The SQL statements the API process sends while the block runs."""
    seen: list[str] = []
    engine = api_app.state.resources.engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_list_items_describe_the_current_revision(api: httpx.AsyncClient, make_account: Any) -> None:
    account = await make_account()
    stock = await _create(api, account, "sma_crossover_trend")
    forex = await _create(api, account, "mtf_trend_filter_eurusd")
    patch = [{"op": "replace", "path": "/universe/symbols", "value": ["MSFT"]}]
    patched = await api.patch(
        f"/strategies/{stock}", json={"patch": patch, "expected_version": 1}, headers=account.headers
    )
    assert patched.status_code == 200, patched.text

    listed = (await api.get("/strategies", headers=account.headers)).json()["items"]
    assert [item["id"] for item in listed] == [stock, forex]
    for item in listed:
        detail = (await api.get(f"/strategies/{item['id']}", headers=account.headers)).json()
        assert {f: item[f] for f in SUMMARY_FIELDS} == {f: detail[f] for f in SUMMARY_FIELDS}
    assert (listed[0]["market"], listed[0]["symbols"], listed[0]["current_version"]) == (
        "us_stocks",
        ["MSFT"],
        2,
    )
    assert (listed[1]["market"], listed[1]["symbols"], listed[1]["timeframe"]) == ("forex", ["EURUSD"], "1h")

    one = (await api.get("/strategies?limit=1", headers=account.headers)).json()
    assert one["items"] == listed[:1] and one["next_cursor"]
    rest = (await api.get(f"/strategies?cursor={one['next_cursor']}", headers=account.headers)).json()
    assert rest["items"] == listed[1:]


async def test_list_reads_the_same_number_of_statements_for_any_page_size(
    api: httpx.AsyncClient, api_app: Any, make_account: Any
) -> None:
    account = await make_account()
    for slug in ("sma_crossover_trend", "rsi_mean_reversion", "zscore_reversion_eurusd"):
        await _create(api, account, slug)
    counts = []
    for limit in (1, 3):
        with _statements(api_app) as seen:
            response = await api.get(f"/strategies?limit={limit}", headers=account.headers)
        assert response.status_code == 200, response.text
        assert len(response.json()["items"]) == limit
        assert all(item["market"] for item in response.json()["items"])
        counts.append(len(seen))
    assert counts[0] == counts[1], counts
