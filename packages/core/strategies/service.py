"""Strategies: immutable revisions, optimistic concurrency, diffs, rollbacks, drafts."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from packages.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from packages.core.market_data.access import visible_namespaces
from packages.core.market_data.repository import DatasetRepository
from packages.core.principal import Principal
from packages.core.resources import Resources
from packages.core.schemas import find_unstorable_text, refuse_unstorable_text
from packages.core.strategies.drafts import DraftStore, UnreadableDraft
from packages.core.strategies.repository import StrategyRepository
from packages.core.strategies.schemas import (
    DiffOut,
    DraftOut,
    ExampleDetail,
    ExampleOut,
    RevisionOut,
    RevisionSummary,
    StrategyList,
    StrategyOut,
    StrategySummary,
    TunableParameterOut,
    TunableParametersOut,
    ValidateResponse,
    ValidationErrorOut,
)
from packages.core.uow import UnitOfWork
from packages.domain.strategy import examples as example_library
from packages.domain.strategy.canonical import PatchError, diff_documents, document_hash
from packages.domain.strategy.patch_trace import Blame, TracedPatch, apply_traced_patch
from packages.domain.strategy.tunables import list_tunable_parameters
from packages.domain.strategy.validation import SymbolChecker, symbol_format_checker, validate_strategy
from packages.domain.strategy.vocabulary import DSL_VERSION
from packages.infra.db.models import Strategy, StrategyRevision

log = logging.getLogger("minsy.strategies")

# Turns a pointer into the document being saved, and the message about it, into a pointer into the
# request and the message to show.
Locator = Callable[[str, str], tuple[str, str]]


async def tradable_symbols(uow: UnitOfWork, principal: Principal, *, network_enabled: bool) -> SymbolChecker:
    """Symbols a strategy may trade: those with stored data the caller can see (shared data and their
    own imports) and, when market-data providers are online, any well-formed symbol (data can be
    fetched for it)."""
    rows = await DatasetRepository(uow.session).in_namespaces(visible_namespaces(principal))
    known = {(row.market, row.symbol) for row in rows if row.row_count > 0}

    def check(market: str, symbol: str) -> bool:
        return (market, symbol) in known or (network_enabled and symbol_format_checker(market, symbol))

    return check


def validation_response(document: Any, symbol_checker: SymbolChecker | None = None) -> ValidateResponse:
    refuse_unstorable_text(document, "/document")
    issues = validate_strategy(document, symbol_checker=symbol_checker)
    return ValidateResponse(
        valid=not issues,
        dsl_version=DSL_VERSION,
        content_hash=None if issues else document_hash(document),
        errors=[ValidationErrorOut(**issue.to_dict()) for issue in issues],
    )


def _in_document(pointer: str, message: str) -> tuple[str, str]:
    """Problems in a document sent whole, as ``document``."""
    return "/document" + pointer, message


def _in_patch(trace: TracedPatch) -> Locator:
    """Problems in a patched document, located in the ``patch`` the client sent: inside the value of
    the operation that wrote the offending value, else at the operation answerable for it, else at
    the patch as a whole; the message names the document location either way."""

    def locate(pointer: str, message: str) -> tuple[str, str]:
        return _patch_pointer(trace.blame(pointer)), f"In the patched document at {pointer or '/'}: {message}"

    return locate


def _patch_pointer(blame: Blame | None) -> str:
    if blame is None:
        return "/patch"
    if blame.value_pointer is None:
        return f"/patch/{blame.operation}"
    return f"/patch/{blame.operation}/value{blame.value_pointer}"


def _describe(document: dict[str, Any]) -> tuple[str, str | None, str | None, list[str], str | None]:
    metadata = document.get("metadata") or {}
    universe = document.get("universe") or {}
    return (
        str(metadata.get("name") or "Untitled strategy")[:200],
        metadata.get("description"),
        universe.get("market"),
        list(universe.get("symbols") or []),
        document.get("timeframe"),
    )


class StrategyService:
    def __init__(
        self, uow: UnitOfWork, principal: Principal, *, symbol_checker: SymbolChecker | None = None
    ) -> None:
        self.uow = uow
        self.principal = principal
        self.symbol_checker = symbol_checker
        self.repo = StrategyRepository(uow.session, principal.user_id)

    @classmethod
    async def open(cls, uow: UnitOfWork, principal: Principal, resources: Resources) -> StrategyService:
        """The service both front ends use: symbols checked against the market data this caller can
        trade (any well-formed symbol when providers may reach the network)."""
        network_enabled = resources.settings.providers.network_enabled
        return cls(
            uow,
            principal,
            symbol_checker=await tradable_symbols(uow, principal, network_enabled=network_enabled),
        )

    # --- reading ---------------------------------------------------------------------------------

    async def page(self, *, limit: int, cursor: str | None, status: str | None) -> StrategyList:
        page = await self.repo.page(limit=limit, cursor=cursor, status=status)
        return StrategyList(
            items=[self._summary(strategy, outline) for strategy, outline in page.rows],
            next_cursor=page.next_cursor,
        )

    async def get(self, strategy_id: uuid.UUID) -> StrategyOut:
        strategy = await self.repo.get(strategy_id)
        return self._out(strategy, await self._current_revision(strategy))

    async def versions(self, strategy_id: uuid.UUID) -> list[RevisionSummary]:
        await self.repo.get(strategy_id)
        return [self._revision_summary(r) for r in await self.repo.revisions(strategy_id)]

    async def version(self, strategy_id: uuid.UUID, version: int) -> RevisionOut:
        await self.repo.get(strategy_id)
        revision = await self._revision(strategy_id, version)
        return RevisionOut(
            **self._revision_summary(revision).model_dump(), document=revision.document, patch=revision.patch
        )

    async def diff(self, strategy_id: uuid.UUID, from_version: int, to_version: int) -> DiffOut:
        await self.repo.get(strategy_id)
        old = await self._revision(strategy_id, from_version)
        new = await self._revision(strategy_id, to_version)
        return DiffOut(
            from_version=from_version, to_version=to_version, patch=diff_documents(old.document, new.document)
        )

    async def tunable_parameters(self, strategy_id: uuid.UUID, version: int | None) -> TunableParametersOut:
        strategy = await self.repo.get(strategy_id)
        revision = await self._revision(strategy_id, version or strategy.current_version)
        parameters = list_tunable_parameters(revision.document, symbol_checker=self.symbol_checker)
        return TunableParametersOut(
            strategy_id=strategy.id,
            version=revision.version,
            parameters=[TunableParameterOut(**p.to_dict()) for p in parameters],
        )

    async def current_document(self, strategy_id: uuid.UUID, version: int | None = None) -> RevisionOut:
        strategy = await self.repo.get(strategy_id)
        return await self.version(strategy_id, version or strategy.current_version)

    # --- writing ---------------------------------------------------------------------------------

    async def create(
        self, document: dict[str, Any], *, session_id: uuid.UUID | None, confirm: bool
    ) -> StrategyOut:
        self._require_valid(document)
        name, description, *_ = _describe(document)
        strategy = Strategy(
            user_id=self.principal.user_id,
            session_id=session_id or self.principal.session_id,
            name=name,
            description=description,
            status="confirmed" if confirm else "draft",
            current_version=1,
            dsl_version=str(document.get("dsl_version", DSL_VERSION)),
            confirmed_at=datetime.now(UTC) if confirm else None,
        )
        if strategy.session_id is not None and not await self._owns_session(strategy.session_id):
            raise NotFound(f"No chat session with id {strategy.session_id}.")
        await self.repo.add(strategy)
        revision = await self._add_revision(strategy, document, "create", source_version=None, patch=None)
        return self._out(strategy, revision)

    async def update(
        self, strategy_id: uuid.UUID, document: dict[str, Any], expected_version: int
    ) -> StrategyOut:
        strategy = await self._locked(strategy_id, expected_version)
        current = await self._current_revision(strategy)
        return await self._commit_change(
            strategy, current, document, "update", patch=diff_documents(current.document, document)
        )

    async def patch(
        self, strategy_id: uuid.UUID, operations: list[dict[str, Any]], expected_version: int
    ) -> StrategyOut:
        refuse_unstorable_text(operations, "/patch")
        strategy = await self._locked(strategy_id, expected_version)
        current = await self._current_revision(strategy)
        try:
            patched = apply_traced_patch(current.document, operations)
        except PatchError as exc:
            raise ValidationFailed(
                f"The patch cannot be applied to version {current.version}: {exc}",
                errors=[FieldError("patch_failed", f"/patch/{exc.operation_index}", str(exc))],
            ) from exc
        if not isinstance(patched.document, dict):
            raise ValidationFailed(
                "The patch must leave a JSON object.",
                errors=[FieldError("not_an_object", "/patch", "the patched document is not a JSON object")],
            )
        return await self._commit_change(
            strategy, current, patched.document, "patch", patch=operations, locate=_in_patch(patched.trace)
        )

    async def rollback(self, strategy_id: uuid.UUID, version: int, expected_version: int) -> StrategyOut:
        strategy = await self._locked(strategy_id, expected_version)
        target = await self._revision(strategy_id, version)
        current = await self._current_revision(strategy)
        strategy.current_version += 1
        revision = await self._add_revision(
            strategy,
            target.document,
            "rollback",
            source_version=version,
            patch=diff_documents(current.document, target.document),
        )
        return self._out(strategy, revision)

    async def confirm(self, strategy_id: uuid.UUID) -> StrategyOut:
        strategy = await self.repo.get(strategy_id, for_update=True)
        if strategy.status != "confirmed":
            strategy.status = "confirmed"
            strategy.confirmed_at = datetime.now(UTC)
            await self.repo.save_changes(strategy)
        return self._out(strategy, await self._current_revision(strategy))

    async def delete(self, strategy_id: uuid.UUID) -> None:
        strategy = await self.repo.get(strategy_id, for_update=True)
        if await self.repo.used_by_deployment(strategy_id):
            raise Conflict(
                "This strategy is used by a deployment; stop and delete the deployment first.",
                extra={"strategy_id": str(strategy_id)},
            )
        await self.repo.delete(strategy)

    # --- drafts ----------------------------------------------------------------------------------

    def drafts(self, store: DraftStore) -> DraftService:
        return DraftService(self, store)

    # --- helpers ---------------------------------------------------------------------------------

    def _require_valid(self, document: Any, locate: Locator = _in_document) -> None:
        found = find_unstorable_text(document)
        if found is not None:
            pointer, message = locate(found.pointer, found.message)
            raise ValidationFailed(
                "The document holds text that cannot be stored; remove the character.",
                errors=[FieldError(found.code, pointer, message)],
            )
        issues = validate_strategy(document, symbol_checker=self.symbol_checker)
        if issues:
            errors = []
            for issue in issues:
                pointer, message = locate(issue.pointer, issue.message)
                errors.append(FieldError(issue.code.value, pointer, message, issue.hint))
            raise ValidationFailed(
                f"The strategy document has {len(issues)} problem(s); fix each at its pointer.",
                errors=errors,
            )

    async def _owns_session(self, session_id: uuid.UUID) -> bool:
        from packages.core.auth.repository import UserRepository

        return await UserRepository(self.uow.session).owns_chat_session(self.principal.user_id, session_id)

    async def _locked(self, strategy_id: uuid.UUID, expected_version: int) -> Strategy:
        strategy = await self.repo.get(strategy_id, for_update=True)
        if strategy.current_version != expected_version:
            raise Conflict(
                f"Version {expected_version} is stale: the strategy is at version {strategy.current_version}. "
                "Fetch it, re-apply your change, and send the current version.",
                extra={"current_version": strategy.current_version},
            )
        return strategy

    async def _commit_change(
        self,
        strategy: Strategy,
        current: StrategyRevision,
        document: dict[str, Any],
        change_type: str,
        *,
        patch: list[dict[str, Any]],
        locate: Locator = _in_document,
    ) -> StrategyOut:
        self._require_valid(document, locate)
        if document_hash(document) == current.content_hash:
            return self._out(strategy, current)  # nothing changed: no new revision
        strategy.current_version += 1
        name, description, *_ = _describe(document)
        strategy.name, strategy.description = name, description
        revision = await self._add_revision(
            strategy, document, change_type, source_version=current.version, patch=patch
        )
        return self._out(strategy, revision)

    async def _add_revision(
        self,
        strategy: Strategy,
        document: dict[str, Any],
        change_type: str,
        *,
        source_version: int | None,
        patch: list[dict[str, Any]] | None,
    ) -> StrategyRevision:
        revision = StrategyRevision(
            strategy_id=strategy.id,
            user_id=self.principal.user_id,
            version=strategy.current_version,
            document=document,
            content_hash=document_hash(document),
            change_type=change_type,
            source_version=source_version,
            patch=patch,
        )
        strategy.dsl_version = str(document.get("dsl_version", DSL_VERSION))
        await self.repo.add_revision(revision)
        await self.repo.save_changes(strategy)
        return revision

    async def _revision(self, strategy_id: uuid.UUID, version: int) -> StrategyRevision:
        revision = await self.repo.revision(strategy_id, version)
        if revision is None:
            raise NotFound(f"Strategy {strategy_id} has no version {version}.")
        return revision

    async def _current_revision(self, strategy: Strategy) -> StrategyRevision:
        return await self._revision(strategy.id, strategy.current_version)

    @staticmethod
    def _revision_summary(revision: StrategyRevision) -> RevisionSummary:
        return RevisionSummary(
            version=revision.version,
            change_type=revision.change_type,
            source_version=revision.source_version,
            content_hash=revision.content_hash,
            created_at=revision.created_at,
        )

    @staticmethod
    def _summary(strategy: Strategy, document: dict[str, Any]) -> StrategySummary:
        """``document`` is the current document, or the outline of it the list reads."""
        _, _, market, symbols, timeframe = _describe(document)
        return StrategySummary(
            id=strategy.id,
            name=strategy.name,
            description=strategy.description,
            status=strategy.status,
            current_version=strategy.current_version,
            dsl_version=strategy.dsl_version,
            market=market,
            symbols=symbols,
            timeframe=timeframe,
            created_at=strategy.created_at,
            updated_at=strategy.updated_at,
        )

    def _out(self, strategy: Strategy, revision: StrategyRevision) -> StrategyOut:
        summary = self._summary(strategy, revision.document)
        return StrategyOut(
            **summary.model_dump(),
            session_id=strategy.session_id,
            confirmed_at=strategy.confirmed_at,
            content_hash=revision.content_hash,
            document=revision.document,
        )


class DraftService:
    def __init__(self, strategies: StrategyService, store: DraftStore) -> None:
        self.strategies = strategies
        self.store = store

    def _out(self, draft_id: uuid.UUID, record: dict[str, Any]) -> DraftOut:
        """The draft as served; ``UnreadableDraft`` when the record is not one ``save`` could write."""
        if find_unstorable_text(record) is not None:
            raise UnreadableDraft(draft_id)
        try:
            return DraftOut(
                id=uuid.UUID(record["id"]),
                session_id=uuid.UUID(record["session_id"]) if record.get("session_id") else None,
                document=record["document"],
                updated_at=datetime.fromisoformat(record["updated_at"]),
                expires_at=datetime.fromisoformat(record["expires_at"]),
                validation=validation_response(record["document"], self.strategies.symbol_checker),
            )
        except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            raise UnreadableDraft(draft_id) from exc

    async def _stored(self, draft_id: uuid.UUID) -> tuple[dict[str, Any], DraftOut]:
        """The stored record and the draft as served; 409 when the record cannot be read."""
        try:
            record = await self.store.get(draft_id)
            return record, self._out(draft_id, record)
        except UnreadableDraft as exc:
            raise Conflict(
                f"Draft {draft_id} holds data that cannot be read; replace it with PUT or delete it.",
                extra={"draft_id": str(draft_id)},
            ) from exc

    async def save(
        self, draft_id: uuid.UUID | None, document: dict[str, Any], session_id: uuid.UUID | None
    ) -> DraftOut:
        refuse_unstorable_text(document, "/document")
        record = await self.store.save(draft_id, document, session_id)
        return self._out(uuid.UUID(record["id"]), record)

    async def get(self, draft_id: uuid.UUID) -> DraftOut:
        return (await self._stored(draft_id))[1]

    async def all(self) -> list[DraftOut]:
        """Every readable draft, newest change first; one that cannot be read is left out (and
        logged) rather than failing the whole list."""
        drafts = []
        for draft_id in await self.store.ids():
            try:
                drafts.append(self._out(draft_id, await self.store.get(draft_id)))
            except NotFound:
                continue  # expired since the index was read
            except UnreadableDraft:
                log.warning("draft %s of user %s cannot be read; left out", draft_id, self.store.user_id)
        return sorted(drafts, key=lambda draft: draft.updated_at, reverse=True)

    async def delete(self, draft_id: uuid.UUID) -> None:
        await self.store.delete(draft_id)

    async def confirm(self, draft_id: uuid.UUID) -> StrategyOut:
        """Save a draft as a confirmed strategy. The caller deletes the draft after the commit, so a
        failed save never loses it."""
        record, _ = await self._stored(draft_id)
        session = uuid.UUID(record["session_id"]) if record.get("session_id") else None
        return await self.strategies.create(record["document"], session_id=session, confirm=True)


def list_examples() -> list[ExampleOut]:
    return [ExampleOut(**example.to_dict()) for example in example_library.list_examples()]


def get_example(slug: str) -> ExampleDetail:
    for example in example_library.list_examples():
        if example.slug == slug:
            return ExampleDetail(**example.to_dict(), document=example_library.get_example(slug))
    raise NotFound(f"No example named {slug!r}; list them with /strategies/examples.")
