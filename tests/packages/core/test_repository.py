"""Owner-scoped repositories: another user's row does not exist for a caller; the job repository's
lock, idempotency lookup, active count and keyset pages stay within the owner's rows."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from packages.core.errors import NotFound, ValidationFailed
from packages.core.jobs.repository import lock_space
from packages.infra.db.models import StressJob
from tests.support.fanout_jobs import SumsJobs


async def _jobs(resources: Any, owner: uuid.UUID, statuses: list[str]) -> list[uuid.UUID]:
    async with resources.unit_of_work() as uow:
        repo = SumsJobs(uow.session, owner)
        rows = [
            await repo.add(
                StressJob(user_id=owner, kind="repo_test", status=status, request={}, idempotency_key=f"k{i}")
            )
            for i, status in enumerate(statuses)
        ]
        return [row.id for row in rows]


async def test_another_owners_rows_are_not_found(api_app: Any, make_account: Any) -> None:
    resources = api_app.state.resources
    owner, stranger = [uuid.UUID((await make_account()).user_id) for _ in range(2)]
    [job_id] = await _jobs(resources, owner, ["queued"])
    async with resources.unit_of_work() as uow:
        mine, theirs = SumsJobs(uow.session, owner), SumsJobs(uow.session, stranger)
        assert (await mine.get(job_id)).id == job_id
        assert await theirs.find(job_id) is None and await theirs.find(job_id, for_update=True) is None
        with pytest.raises(NotFound):
            await theirs.get(job_id)
        assert (
            await theirs.by_idempotency_key("k0") is None
            and (await mine.by_idempotency_key("k0")).id == job_id
        )
        assert (await theirs.count(), await theirs.count_active()) == (0, 0)
        assert (await theirs.page(limit=10, cursor=None)).rows == []
        with pytest.raises(ValueError):
            await theirs.add(StressJob(user_id=owner, kind="repo_test", request={}))


async def test_pages_follow_the_cursor_newest_first_with_a_status_filter(
    api_app: Any, make_account: Any
) -> None:
    resources = api_app.state.resources
    owner = uuid.UUID((await make_account()).user_id)
    statuses = ["queued", "running", "succeeded", "failed", "queued"]
    ids = await _jobs(resources, owner, statuses)
    async with resources.unit_of_work() as uow:
        repo = SumsJobs(uow.session, owner)
        assert (await repo.count(), await repo.count_active()) == (5, 3)
        seen, cursor = [], None
        while True:
            page = await repo.page(limit=2, cursor=cursor)
            seen += [row.id for row in page.rows]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        # One transaction gives every row the same created_at: the id orders them, descending.
        assert seen == sorted(ids, reverse=True)
        queued = await repo.page(limit=10, cursor=None, status="queued")
        assert {row.id for row in queued.rows} == {ids[0], ids[4]} and queued.next_cursor is None
        with pytest.raises(ValidationFailed):
            await repo.page(limit=2, cursor="not-a-cursor")


def test_each_job_table_locks_in_its_own_space() -> None:
    spaces = {lock_space(name) for name in ("backtest_jobs", "stress_jobs", "market_data_sync_jobs")}
    assert len(spaces) == 3 and all(0 <= space < 2**31 for space in spaces)
