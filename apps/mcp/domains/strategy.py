"""Strategy tools: the model drafts a DSL document, validates it, saves it, and revises it."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from apps.mcp.auth import principal_of
from apps.mcp.domains.common import add_capabilities_tool
from apps.mcp.registry import domain_errors, new_domain_server
from packages.core.errors import NotFound, ValidationFailed
from packages.core.principal import Principal
from packages.core.resources import Resources
from packages.core.strategies.schemas import (
    MAX_VERSION,
    DiffOut,
    ExampleDetail,
    ExampleOut,
    PatchOperation,
    RevisionOut,
    RevisionSummary,
    StrategyList,
    StrategyOut,
    TunableParametersOut,
    ValidateResponse,
)
from packages.core.strategies.service import StrategyService, get_example, list_examples, validation_response
from packages.core.uow import UnitOfWork
from packages.domain.strategy.indicators import catalogue_document, get_indicator
from packages.domain.strategy.schema import get_strategy_schema
from packages.domain.strategy.vocabulary import DSL_VERSION

SUMMARY = "Write, validate and version trading strategies in the Minsy JSON DSL."

READ_ONLY = ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False)
WRITES = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False)

StrategyId = Annotated[uuid.UUID, Field(description="A strategy id from list_strategies or upsert_strategy.")]
Version = Annotated[int, Field(ge=1, le=MAX_VERSION)]


class SchemaOut(BaseModel):
    dsl_version: str
    json_schema: dict[str, Any] = Field(description="The JSON Schema 2020-12 document of the DSL.")


class CatalogueOut(BaseModel):
    categories: list[str]
    indicators: list[dict[str, Any]]


class IndicatorOut(BaseModel):
    indicator: dict[str, Any]


class ExampleList(BaseModel):
    examples: list[ExampleOut]


class VersionList(BaseModel):
    strategy_id: uuid.UUID
    versions: list[RevisionSummary]


def build(resources: Resources) -> MCPServer:
    server = new_domain_server(resources, "strategy", SUMMARY)

    async def _service(uow: UnitOfWork, principal: Principal) -> StrategyService:
        return await StrategyService.open(uow, principal, resources)

    add_capabilities_tool(server, "strategy", SUMMARY)

    @server.tool(
        description="The DSL's JSON Schema. Read it before writing a document; every document must validate against it.",
        annotations=READ_ONLY,
    )
    @domain_errors
    async def get_strategy_schema_document(ctx: Context) -> SchemaOut:
        principal_of(ctx)
        return SchemaOut(dsl_version=DSL_VERSION, json_schema=get_strategy_schema())

    @server.tool(
        description="List the indicator catalogue (name, category, params with bounds, outputs, warm-up). Optional category filter.",
        annotations=READ_ONLY,
    )
    @domain_errors
    async def get_indicator_catalogue(
        ctx: Context, category: Annotated[str | None, Field(max_length=40)] = None
    ) -> CatalogueOut:
        principal_of(ctx)
        catalogue = catalogue_document()
        indicators = [i for i in catalogue["indicators"] if category is None or i.get("category") == category]
        return CatalogueOut(categories=catalogue["categories"], indicators=indicators)

    @server.tool(description="Full detail of one indicator, by its catalogue name.", annotations=READ_ONLY)
    @domain_errors
    async def get_indicator_detail(ctx: Context, name: Annotated[str, Field(max_length=64)]) -> IndicatorOut:
        principal_of(ctx)
        spec = get_indicator(name)
        if spec is None:
            raise NotFound(f"No indicator named {name!r}; call get_indicator_catalogue for the names.")
        return IndicatorOut(indicator=spec.to_dict())

    @server.tool(
        description="Template strategies (trend, mean reversion, breakout, volatility, multi-timeframe, rotation, long/short). Start from one.",
        annotations=READ_ONLY,
    )
    @domain_errors
    async def list_strategy_examples(ctx: Context) -> ExampleList:
        principal_of(ctx)
        return ExampleList(examples=list_examples())

    @server.tool(description="One template strategy with its full document.", annotations=READ_ONLY)
    @domain_errors
    async def get_strategy_example(ctx: Context, slug: Annotated[str, Field(max_length=80)]) -> ExampleDetail:
        principal_of(ctx)
        return get_example(slug)

    @server.tool(
        description=(
            "Validate a strategy document without saving it. Returns every error with a code, a JSON pointer "
            "into the document and a hint; fix them all and validate again before upsert_strategy."
        ),
        annotations=READ_ONLY,
    )
    @domain_errors
    async def validate_strategy(ctx: Context, document: dict[str, Any]) -> ValidateResponse:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            service = await _service(uow, principal)
        return validation_response(document, service.symbol_checker)

    @server.tool(
        description=(
            "Save a strategy: without strategy_id creates it (version 1); with strategy_id and expected_version "
            "replaces its document as a new version. A stale expected_version is refused: fetch and retry."
        ),
        annotations=WRITES,
    )
    @domain_errors
    async def upsert_strategy(
        ctx: Context,
        document: dict[str, Any],
        strategy_id: StrategyId | None = None,
        expected_version: Version | None = None,
    ) -> StrategyOut:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            service = await _service(uow, principal)
            if strategy_id is None:
                return await service.create(document, session_id=None, confirm=False)
            if expected_version is None:
                current = (await service.get(strategy_id)).current_version
                raise ValidationFailed(
                    f"expected_version is required to update; the strategy is at version {current}."
                )
            return await service.update(strategy_id, document, expected_version)

    @server.tool(description="Your saved strategies, newest change first.", annotations=READ_ONLY)
    @domain_errors
    async def list_strategies(
        ctx: Context,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Field(max_length=200)] = None,
    ) -> StrategyList:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await (await _service(uow, principal)).page(limit=limit, cursor=cursor, status=None)

    @server.tool(description="A saved strategy with its current document and version.", annotations=READ_ONLY)
    @domain_errors
    async def get_strategy(ctx: Context, strategy_id: StrategyId) -> StrategyOut:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await (await _service(uow, principal)).get(strategy_id)

    @server.tool(
        description=(
            "Change a saved strategy with RFC 6902 operations (paths into the document, e.g. "
            "/factors/0/params/period). Needs the current version as expected_version; creates a new version."
        ),
        annotations=WRITES,
    )
    @domain_errors
    async def patch_strategy(
        ctx: Context,
        strategy_id: StrategyId,
        patch: Annotated[list[PatchOperation], Field(min_length=1, max_length=200)],
        expected_version: Version,
    ) -> StrategyOut:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await (await _service(uow, principal)).patch(
                strategy_id, [op.as_rfc6902() for op in patch], expected_version
            )

    @server.tool(description="Every version of a strategy, oldest first.", annotations=READ_ONLY)
    @domain_errors
    async def list_strategy_versions(ctx: Context, strategy_id: StrategyId) -> VersionList:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            versions = await (await _service(uow, principal)).versions(strategy_id)
        return VersionList(strategy_id=strategy_id, versions=versions)

    @server.tool(description="One version of a strategy with its document.", annotations=READ_ONLY)
    @domain_errors
    async def get_strategy_version(ctx: Context, strategy_id: StrategyId, version: Version) -> RevisionOut:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await (await _service(uow, principal)).version(strategy_id, version)

    @server.tool(description="RFC 6902 patch turning one version into another.", annotations=READ_ONLY)
    @domain_errors
    async def diff_strategy_versions(
        ctx: Context, strategy_id: StrategyId, from_version: Version, to_version: Version
    ) -> DiffOut:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await (await _service(uow, principal)).diff(strategy_id, from_version, to_version)

    @server.tool(
        description="Make an earlier version current again (recorded as a new version). Needs expected_version.",
        annotations=WRITES,
    )
    @domain_errors
    async def rollback_strategy(
        ctx: Context, strategy_id: StrategyId, version: Version, expected_version: Version
    ) -> StrategyOut:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await (await _service(uow, principal)).rollback(strategy_id, version, expected_version)

    @server.tool(
        description="Numeric parameters of a strategy with their bounds: what optimisation and sensitivity tests may vary.",
        annotations=READ_ONLY,
    )
    @domain_errors
    async def get_tunable_parameters(
        ctx: Context, strategy_id: StrategyId, version: Version | None = None
    ) -> TunableParametersOut:
        principal = principal_of(ctx)
        async with resources.unit_of_work() as uow:
            return await (await _service(uow, principal)).tunable_parameters(strategy_id, version)

    return server
