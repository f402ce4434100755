"""The live stream over a real HTTP server: stored events after Last-Event-ID, then live ones, each
exactly once and in order (duplicates dropped, late or lost publications read from the database),
heartbeats when idle, and another user's deployment a 404 before any stream opens."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from apps.api.main import create_app
from packages.core.events.outbox import OutboxRelay
from packages.core.trading.events import PnlEvent, channel, record_event
from packages.core.uow import UnitOfWork
from packages.infra.db.models import Deployment
from tests.packages.core.trading.trading_kit import create_deployment, new_trader, start_deployment
from tests.support.live_server import serve

HEARTBEAT_S = 0.4


class BrokerDown:
    def publish(self, kind: str, name: str, payload: dict[str, Any]) -> None:
        raise ConnectionError("redis away")


@pytest.fixture(scope="module")
def stream_server(settings: Any) -> Any:
    """The API on a real uvicorn server, heartbeating every 0.4 s."""
    quick = copy.copy(settings)
    quick.trading = settings.trading.model_copy(update={"stream_heartbeat_s": HEARTBEAT_S})
    with serve(create_app(quick)) as url:
        yield url


async def _event(resources: Any, deployment_id: uuid.UUID, value: int, *, published: bool = True) -> int:
    """A PnL event as a cycle records it; ``published=False``: its fast-path publication fails
    (the relay would send it later), as after a Redis hiccup."""
    relay = resources.outbox_relay if published else OutboxRelay(resources.session_factory, BrokerDown())
    async with UnitOfWork(resources.session_factory, relay) as uow:
        deployment = await uow.session.get(Deployment, deployment_id)
        assert deployment is not None
        event = await record_event(
            uow,
            deployment,
            "pnl",
            PnlEvent(
                bar_at=datetime(2024, 1, 10, value, tzinfo=UTC),
                equity=10_000 + value,
                cash=10_000,
                realized_pnl=0,
                unrealized_pnl=value,
                positions_value=value,
                drawdown=0,
            ),
        )
        return event.seq


class Listener:
    """Reads an SSE stream into a queue: events as dicts, heartbeats as the string 'heartbeat'."""

    def __init__(self) -> None:
        self.items: asyncio.Queue[Any] = asyncio.Queue()

    async def read(self, response: httpx.Response) -> None:
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line.startswith(":"):
                await self.items.put("heartbeat")
            elif line == "":
                if fields:
                    await self.items.put({**fields, "data": json.loads(fields["data"])})
                fields = {}
            else:
                name, _, value = line.partition(": ")
                fields[name] = value

    async def events(self, count: int, timeout_s: float = 10) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout_s):
            while len(found) < count:
                item = await self.items.get()
                if item != "heartbeat":
                    found.append(item)
        return found

    async def quiet(self, seconds: float) -> list[Any]:
        """Everything that arrives within ``seconds`` (to show nothing else does)."""
        seen = []
        try:
            async with asyncio.timeout(seconds):
                while True:
                    seen.append(await self.items.get())
        except TimeoutError:
            return seen


@asynccontextmanager
async def listening(
    url: str, headers: dict[str, str], params: dict[str, Any] | None = None
) -> AsyncIterator[Listener]:
    listener = Listener()
    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream("GET", url, headers=headers, params=params) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = asyncio.create_task(listener.read(response))
        try:
            yield listener
        finally:
            reader.cancel()


def _seqs(events: list[dict[str, Any]]) -> list[int]:
    assert all(int(e["id"]) == e["data"]["seq"] for e in events)
    return [int(e["id"]) for e in events]


async def test_replay_after_last_event_id_then_live_exactly_once(
    stream_server: str, api: httpx.AsyncClient, make_account: Any, api_app: Any
) -> None:
    resources = api_app.state.resources
    trader = await new_trader(api, make_account)
    created = await create_deployment(api, trader)  # 1: created
    await start_deployment(api, trader, created["id"])  # 2: started
    deployment_id = uuid.UUID(created["id"])
    for hour in (3, 4, 5):
        await _event(resources, deployment_id, hour)
    url = f"{stream_server}/api/v1/deployments/{deployment_id}/stream"

    async with listening(url, {**trader.headers, "Last-Event-ID": "2"}) as first:
        replayed = await first.events(3)
        assert _seqs(replayed) == [3, 4, 5]
        assert replayed[0]["event"] == "pnl" and replayed[0]["data"]["payload"]["equity"] == 10_003
        await _event(resources, deployment_id, 6)
        # A duplicate delivery (the outbox publishes at least once) is dropped.
        duplicate = (await api.get(f"/deployments/{deployment_id}", headers=trader.headers)).json()
        assert duplicate["last_event_seq"] == 6
        await resources.redis.publish(channel(deployment_id), json.dumps(replayed[1]["data"]))
        await _event(resources, deployment_id, 7)
        assert _seqs(await first.events(2)) == [6, 7]
        # Two publications lost, then a live one: the missing ones come from the database first.
        await _event(resources, deployment_id, 8, published=False)
        await _event(resources, deployment_id, 9, published=False)
        await _event(resources, deployment_id, 10)
        assert _seqs(await first.events(3)) == [8, 9, 10]
        # A late publication with nothing after it: found at the next heartbeat's look.
        await _event(resources, deployment_id, 11, published=False)
        assert _seqs(await first.events(1)) == [11]
        # Idle: heartbeats only.
        idle = await first.quiet(3 * HEARTBEAT_S)
        assert idle and set(idle) == {"heartbeat"}

    # A client reconnecting with what it saw last gets exactly the rest.
    async with listening(url, {**trader.headers, "Last-Event-ID": "9"}) as second:
        assert _seqs(await second.events(2)) == [10, 11]
        await _event(resources, deployment_id, 12)
        assert _seqs(await second.events(1)) == [12]
        assert [i for i in await second.quiet(2 * HEARTBEAT_S) if i != "heartbeat"] == []
    async with listening(url, trader.headers, {"last_event_id": 11}) as third:
        assert _seqs(await third.events(1)) == [12]
    async with listening(url, trader.headers) as everything:
        replay = await everything.events(12)
        assert _seqs(replay) == list(range(1, 13))
        assert [e["event"] for e in replay[:2]] == ["status", "status"]
        assert replay[1]["data"]["payload"]["to_value"] == "active"


async def test_the_stream_is_owner_scoped_and_checks_its_input(
    stream_server: str, api: httpx.AsyncClient, make_account: Any
) -> None:
    trader = await new_trader(api, make_account)
    deployment = await create_deployment(api, trader)
    url = f"{stream_server}/api/v1/deployments/{deployment['id']}/stream"
    stranger = await make_account()
    async with httpx.AsyncClient(timeout=10) as client:
        foreign = await client.get(url, headers=stranger.headers)
        assert foreign.status_code == 404
        assert foreign.headers["content-type"] == "application/problem+json"
        missing = await client.get(
            f"{stream_server}/api/v1/deployments/{uuid.uuid4()}/stream", headers=trader.headers
        )
        assert missing.status_code == 404
        assert (await client.get(url)).status_code == 401
        bad = await client.get(url, headers={**trader.headers, "Last-Event-ID": "abc"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/header/Last-Event-ID"
