"""The unit of work: one transaction; its outbox rows exist exactly when it committed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from packages.infra.db.models import OutboxMessage, StressJob


async def _state(resources: Any, marker: str) -> tuple[int, int]:
    """(jobs, outbox rows) this test wrote under ``marker``."""
    async with resources.session_factory() as session:
        jobs = await session.scalars(select(StressJob).where(StressJob.notes == marker))
        messages = await session.scalars(
            select(OutboxMessage).where(OutboxMessage.payload["args"][0].astext == marker)
        )
        return len(list(jobs)), len(list(messages))


def _job(user_id: uuid.UUID, marker: str) -> StressJob:
    return StressJob(user_id=user_id, kind="uow_test", request={}, notes=marker)


async def test_commit_keeps_the_work_and_its_messages_and_rollback_keeps_neither(
    api_app: Any, make_account: Any
) -> None:
    resources = api_app.state.resources
    user_id = uuid.UUID((await make_account()).user_id)
    kept, dropped, forced = (uuid.uuid4().hex for _ in range(3))

    async with resources.unit_of_work() as uow:
        uow.session.add(_job(user_id, kept))
        uow.enqueue("maintenance.probe", kept)
    assert await _state(resources, kept) == (1, 1)

    with pytest.raises(RuntimeError):
        async with resources.unit_of_work() as uow:
            uow.session.add(_job(user_id, dropped))
            uow.enqueue("maintenance.probe", dropped)
            await uow.session.flush()
            raise RuntimeError("the use-case failed")
    assert await _state(resources, dropped) == (0, 0)

    # commit_now keeps what was done so far although the use-case then fails.
    with pytest.raises(RuntimeError):
        async with resources.unit_of_work() as uow:
            uow.session.add(_job(user_id, forced))
            await uow.commit_now()
            raise RuntimeError("refused after recording the attempt")
    assert await _state(resources, forced) == (1, 0)


async def test_a_unit_of_work_outside_its_block_refuses_to_be_used(api_app: Any) -> None:
    uow = api_app.state.resources.unit_of_work()
    with pytest.raises(RuntimeError, match="outside 'async with'"):
        uow.enqueue("maintenance.probe", "never")
    async with uow:
        pass
    with pytest.raises(RuntimeError):
        _ = uow.session
