from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, select

from packages.core.pagination import Keyset, Page
from packages.core.repository import OwnedRepository
from packages.infra.db.models import Deployment, Strategy, StrategyRevision

# Strategies, most recently changed first; a row of a page is (strategy, outline).
RECENTLY_CHANGED: Keyset[tuple[Strategy, dict[str, Any]]] = Keyset(
    scope="strategies",
    columns=(Strategy.updated_at, Strategy.id),
    types=(datetime, uuid.UUID),
    key_of=lambda row: (row[0].updated_at, row[0].id),
)


class StrategyRepository(OwnedRepository[Strategy]):
    model = Strategy
    noun = "strategy"

    async def page(
        self, *, limit: int, cursor: str | None, status: str | None
    ) -> Page[tuple[Strategy, dict[str, Any]]]:
        """A page of strategies, most recently changed first, each with the outline of its current
        document (its ``universe`` and ``timeframe``), read in the same query: only those parts,
        not whole documents."""
        document = StrategyRevision.document
        query = (
            self.base_query()
            .add_columns(document["universe"], document["timeframe"])
            .outerjoin(
                StrategyRevision,
                and_(
                    StrategyRevision.strategy_id == Strategy.id,
                    StrategyRevision.version == Strategy.current_version,
                    StrategyRevision.user_id == self.owner_id,
                ),
            )
        )
        if status:
            query = query.where(Strategy.status == status)
        rows = (await self.session.execute(RECENTLY_CHANGED.apply(query, cursor=cursor, limit=limit))).all()
        return RECENTLY_CHANGED.page(
            [
                (strategy, {"universe": universe, "timeframe": timeframe})
                for strategy, universe, timeframe in rows
            ],
            limit,
        )

    async def revision(self, strategy_id: uuid.UUID, version: int) -> StrategyRevision | None:
        found: StrategyRevision | None = await self.session.scalar(
            select(StrategyRevision).where(
                StrategyRevision.strategy_id == strategy_id,
                StrategyRevision.user_id == self.owner_id,
                StrategyRevision.version == version,
            )
        )
        return found

    async def revisions(self, strategy_id: uuid.UUID) -> list[StrategyRevision]:
        rows = await self.session.scalars(
            select(StrategyRevision)
            .where(StrategyRevision.strategy_id == strategy_id, StrategyRevision.user_id == self.owner_id)
            .order_by(StrategyRevision.version)
        )
        return list(rows.all())

    async def add_revision(self, revision: StrategyRevision) -> None:
        self.session.add(revision)
        await self.session.flush()

    async def save_changes(self, strategy: Strategy) -> None:
        """Write ``strategy``'s pending changes and read back ``updated_at``, which the database sets
        on every UPDATE: the flush expires it, and an async session cannot load it lazily later."""
        await self.session.flush()
        await self.session.refresh(strategy, attribute_names=["updated_at"])

    async def used_by_deployment(self, strategy_id: uuid.UUID) -> bool:
        """Whether a deployment that has not stopped runs this strategy (stopped ones keep their copy)."""
        found = await self.session.scalar(
            select(
                exists().where(
                    Deployment.strategy_id == strategy_id,
                    Deployment.user_id == self.owner_id,
                    Deployment.status != "stopped",
                )
            )
        )
        return bool(found)

    async def delete(self, strategy: Strategy) -> None:
        await self.session.delete(strategy)
        await self.session.flush()
