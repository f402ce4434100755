"""All SQL of stress tests: the owner's jobs and the pages of a finished test's items."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, true
from sqlalchemy.orm import defer

from packages.core.jobs.repository import JobRepository
from packages.core.pagination import Page, decode_cursor, encode_cursor
from packages.infra.db.models import StressJob


class StressJobRepository(JobRepository[StressJob]):
    model = StressJob
    noun = "stress test"

    def base_query(self) -> Any:
        # Items are read page by page (``items_page``), never with the row.
        return super().base_query().options(defer(StressJob.items))

    async def items_count(self, job_id: uuid.UUID) -> int:
        count = await self.session.scalar(
            select(func.coalesce(func.jsonb_array_length(StressJob.items), 0)).where(
                StressJob.id == job_id, StressJob.user_id == self.owner_id
            )
        )
        return int(count or 0)

    async def items_page(self, job_id: uuid.UUID, *, limit: int, cursor: str | None) -> Page[dict[str, Any]]:
        """Items in report order, ``limit`` after ``cursor`` (cursors are bound to the job)."""
        scope = f"stress-items:{job_id}"
        after = decode_cursor(scope, cursor, (int,))[0] if cursor else 0
        elements = (
            func.jsonb_array_elements(StressJob.items)
            .table_valued("value", with_ordinality="position")
            .render_derived()
            .lateral("element")
        )
        rows = (
            await self.session.execute(
                select(elements.c.value, elements.c.position)
                .select_from(StressJob)
                .join(elements, true())
                .where(
                    StressJob.id == job_id, StressJob.user_id == self.owner_id, elements.c.position > after
                )
                .order_by(elements.c.position)
                .limit(limit + 1)
            )
        ).all()
        shown = rows[:limit]
        following = encode_cursor(scope, [int(shown[-1][1])]) if len(rows) > limit else None
        return Page([dict(row[0]) for row in shown], following)
