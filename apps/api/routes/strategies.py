from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response, status

from apps.api.deps import PrincipalDep, ResourcesDep, UowDep
from apps.api.problems import problem_responses
from packages.core.errors import NotFound
from packages.core.principal import Principal
from packages.core.resources import Resources
from packages.core.strategies.drafts import DraftStore
from packages.core.strategies.schemas import (
    MAX_VERSION,
    CreateStrategyRequest,
    DiffOut,
    DraftOut,
    DraftRequest,
    ExampleDetail,
    ExampleOut,
    PatchStrategyRequest,
    RevisionOut,
    RevisionSummary,
    RollbackRequest,
    StrategyList,
    StrategyOut,
    TunableParametersOut,
    UpdateStrategyRequest,
    ValidateRequest,
    ValidateResponse,
)
from packages.core.strategies.service import StrategyService, get_example, list_examples, validation_response
from packages.core.uow import UnitOfWork
from packages.domain.strategy.indicators import catalogue_document, get_indicator
from packages.domain.strategy.schema import get_strategy_schema

router = APIRouter(prefix="/strategies", tags=["strategies"])

AUTH = problem_responses(401)
READ = problem_responses(401, 404, 422)
WRITE = problem_responses(401, 404, 409, 413, 422)

# Out of range is a 422 pointing at /path/version, as body and query version numbers are.
VersionPath = Annotated[int, Path(ge=1, le=MAX_VERSION)]


async def strategies(uow: UnitOfWork, principal: Principal, resources: Resources) -> StrategyService:
    """The service, checking symbols against the market data this caller can trade."""
    return await StrategyService.open(uow, principal, resources)


def draft_store(resources: Resources, principal: Principal) -> DraftStore:
    config = resources.settings.strategies
    return DraftStore(
        resources.redis, principal.user_id, ttl_s=config.draft_ttl_s, max_drafts=config.max_drafts_per_user
    )


# --- language reference (static) -----------------------------------------------------------------


@router.get(
    "/schema", operation_id="strategies_schema", summary="The DSL's JSON Schema (2020-12)", responses=AUTH
)
async def schema(principal: PrincipalDep) -> dict[str, Any]:
    return get_strategy_schema()


@router.get(
    "/indicators", operation_id="strategies_indicators", summary="The indicator catalogue", responses=AUTH
)
async def indicators(principal: PrincipalDep) -> dict[str, Any]:
    return catalogue_document()


@router.get(
    "/indicators/{name}",
    operation_id="strategies_indicator",
    summary="One indicator: parameters, bounds, outputs, warm-up",
    responses=READ,
)
async def indicator(name: str, principal: PrincipalDep) -> dict[str, Any]:
    spec = get_indicator(name)
    if spec is None:
        raise NotFound(f"No indicator named {name!r}; list them with /strategies/indicators.")
    return spec.to_dict()


@router.get("/examples", operation_id="strategies_examples", summary="Template strategies", responses=AUTH)
async def examples(principal: PrincipalDep) -> list[ExampleOut]:
    return list_examples()


@router.get(
    "/examples/{slug}",
    operation_id="strategies_example",
    summary="One template with its document",
    responses=READ,
)
async def example(slug: str, principal: PrincipalDep) -> ExampleDetail:
    return get_example(slug)


@router.post(
    "/validate",
    operation_id="strategies_validate",
    summary="Validate a document without saving it: every error with code and JSON pointer",
    responses=problem_responses(401, 413, 422),
)
async def validate(
    body: ValidateRequest, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> ValidateResponse:
    async with uow:
        service = await strategies(uow, principal, resources)
    return validation_response(body.document, service.symbol_checker)


# --- drafts (Redis, expiring) ----------------------------------------------------------------------


@router.get("/drafts", operation_id="strategies_drafts_list", summary="Your unsaved drafts", responses=AUTH)
async def list_drafts(principal: PrincipalDep, uow: UowDep, resources: ResourcesDep) -> list[DraftOut]:
    async with uow:
        return (
            await (await strategies(uow, principal, resources))
            .drafts(draft_store(resources, principal))
            .all()
        )


@router.post(
    "/drafts",
    status_code=status.HTTP_201_CREATED,
    operation_id="strategies_drafts_create",
    summary="Keep an unsaved draft (it expires); invalid documents are accepted and reported",
    responses=problem_responses(401, 413, 422, 429),
)
async def create_draft(
    body: DraftRequest, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> DraftOut:
    async with uow:
        service = (await strategies(uow, principal, resources)).drafts(draft_store(resources, principal))
        return await service.save(None, body.document, body.session_id)


@router.get(
    "/drafts/{draft_id}",
    operation_id="strategies_drafts_get",
    summary="One draft",
    responses=problem_responses(401, 404, 409, 422),
)
async def get_draft(
    draft_id: uuid.UUID, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> DraftOut:
    async with uow:
        return (
            await (await strategies(uow, principal, resources))
            .drafts(draft_store(resources, principal))
            .get(draft_id)
        )


@router.put(
    "/drafts/{draft_id}", operation_id="strategies_drafts_update", summary="Replace a draft", responses=WRITE
)
async def update_draft(
    draft_id: uuid.UUID, body: DraftRequest, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> DraftOut:
    async with uow:
        service = (await strategies(uow, principal, resources)).drafts(draft_store(resources, principal))
        return await service.save(draft_id, body.document, body.session_id)


@router.delete(
    "/drafts/{draft_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="strategies_drafts_delete",
    summary="Discard a draft",
    responses=READ,
)
async def delete_draft(draft_id: uuid.UUID, principal: PrincipalDep, resources: ResourcesDep) -> Response:
    await draft_store(resources, principal).delete(draft_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/drafts/{draft_id}/confirm",
    status_code=status.HTTP_201_CREATED,
    operation_id="strategies_drafts_confirm",
    summary="Save a valid draft as a confirmed strategy (version 1)",
    responses=WRITE,
)
async def confirm_draft(
    draft_id: uuid.UUID, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> StrategyOut:
    store = draft_store(resources, principal)
    async with uow:
        created = await (await strategies(uow, principal, resources)).drafts(store).confirm(draft_id)
    await store.delete(draft_id)  # only once the strategy is committed
    return created


# --- strategies ------------------------------------------------------------------------------------


@router.get(
    "", operation_id="strategies_list", summary="Your strategies, newest change first", responses=READ
)
async def list_strategies(
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    status_filter: Annotated[Literal["draft", "confirmed", "archived"] | None, Query(alias="status")] = None,
) -> StrategyList:
    async with uow:
        return await (await strategies(uow, principal, resources)).page(
            limit=limit, cursor=cursor, status=status_filter
        )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    operation_id="strategies_create",
    summary="Create a strategy from a valid document (version 1)",
    responses=WRITE,
)
async def create_strategy(
    body: CreateStrategyRequest, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> StrategyOut:
    async with uow:
        return await (await strategies(uow, principal, resources)).create(
            body.document, session_id=body.session_id, confirm=body.confirm
        )


@router.get(
    "/{strategy_id}",
    operation_id="strategies_get",
    summary="A strategy and its current document",
    responses=READ,
)
async def get_strategy(
    strategy_id: uuid.UUID, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> StrategyOut:
    async with uow:
        return await (await strategies(uow, principal, resources)).get(strategy_id)


@router.put(
    "/{strategy_id}",
    operation_id="strategies_update",
    summary="Replace the document (new revision); expected_version guards against lost updates",
    responses=WRITE,
)
async def update_strategy(
    strategy_id: uuid.UUID,
    body: UpdateStrategyRequest,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
) -> StrategyOut:
    async with uow:
        return await (await strategies(uow, principal, resources)).update(
            strategy_id, body.document, body.expected_version
        )


@router.patch(
    "/{strategy_id}",
    operation_id="strategies_patch",
    summary="Apply RFC 6902 operations (new revision); a stale expected_version gets 409",
    responses=WRITE,
)
async def patch_strategy(
    strategy_id: uuid.UUID,
    body: PatchStrategyRequest,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
) -> StrategyOut:
    async with uow:
        return await (await strategies(uow, principal, resources)).patch(
            strategy_id, [op.as_rfc6902() for op in body.patch], body.expected_version
        )


@router.delete(
    "/{strategy_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="strategies_delete",
    summary="Delete a strategy and its revisions (refused while a deployment uses it)",
    responses=problem_responses(401, 404, 409),
)
async def delete_strategy(
    strategy_id: uuid.UUID, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> Response:
    async with uow:
        await (await strategies(uow, principal, resources)).delete(strategy_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{strategy_id}/confirm",
    operation_id="strategies_confirm",
    summary="Mark as confirmed by the user",
    responses=READ,
)
async def confirm_strategy(
    strategy_id: uuid.UUID, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> StrategyOut:
    async with uow:
        return await (await strategies(uow, principal, resources)).confirm(strategy_id)


@router.get(
    "/{strategy_id}/versions",
    operation_id="strategies_versions",
    summary="Every revision, oldest first",
    responses=READ,
)
async def versions(
    strategy_id: uuid.UUID, principal: PrincipalDep, uow: UowDep, resources: ResourcesDep
) -> list[RevisionSummary]:
    async with uow:
        return await (await strategies(uow, principal, resources)).versions(strategy_id)


@router.get(
    "/{strategy_id}/versions/{version}",
    operation_id="strategies_version",
    summary="One revision with its document and the patch that produced it",
    responses=READ,
)
async def version(
    strategy_id: uuid.UUID,
    version: VersionPath,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
) -> RevisionOut:
    async with uow:
        return await (await strategies(uow, principal, resources)).version(strategy_id, version)


@router.get(
    "/{strategy_id}/diff",
    operation_id="strategies_diff",
    summary="RFC 6902 patch between two versions",
    responses=READ,
)
async def diff(
    strategy_id: uuid.UUID,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    from_version: Annotated[int, Query(alias="from", ge=1, le=MAX_VERSION)],
    to_version: Annotated[int, Query(alias="to", ge=1, le=MAX_VERSION)],
) -> DiffOut:
    async with uow:
        return await (await strategies(uow, principal, resources)).diff(strategy_id, from_version, to_version)


@router.post(
    "/{strategy_id}/rollback",
    operation_id="strategies_rollback",
    summary="Make an earlier version's document current again, as a new revision",
    responses=WRITE,
)
async def rollback(
    strategy_id: uuid.UUID,
    body: RollbackRequest,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
) -> StrategyOut:
    async with uow:
        return await (await strategies(uow, principal, resources)).rollback(
            strategy_id, body.version, body.expected_version
        )


@router.get(
    "/{strategy_id}/tunable-parameters",
    operation_id="strategies_tunable_parameters",
    summary="Numeric parameters with their bounds (what stress tests may vary)",
    responses=READ,
)
async def tunable_parameters(
    strategy_id: uuid.UUID,
    principal: PrincipalDep,
    uow: UowDep,
    resources: ResourcesDep,
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
) -> TunableParametersOut:
    async with uow:
        return await (await strategies(uow, principal, resources)).tunable_parameters(strategy_id, version)
