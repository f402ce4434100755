from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from packages.core.schemas import StrictModel

StrategyStatus = Literal["draft", "confirmed", "archived"]
ChangeType = Literal["create", "update", "patch", "rollback"]

# Versions are stored in PostgreSQL integer columns: a larger number can name no version, and the
# driver cannot even send it, so every surface refuses it as invalid input.
MAX_VERSION = 2**31 - 1
VersionNumber = Annotated[int, Field(ge=1, le=MAX_VERSION)]

Document = Annotated[
    dict[str, Any], Field(description="A strategy document in the Minsy DSL (see /strategies/schema).")
]


class PatchOperation(StrictModel):
    """One RFC 6902 operation."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    op: Literal["add", "remove", "replace", "move", "copy", "test"]
    path: Annotated[str, Field(max_length=500)]
    value: Any = None
    from_: Annotated[str | None, Field(default=None, alias="from", max_length=500)] = None

    def as_rfc6902(self) -> dict[str, Any]:
        operation: dict[str, Any] = {"op": self.op, "path": self.path}
        if self.op in ("add", "replace", "test"):
            operation["value"] = self.value
        if self.op in ("move", "copy"):
            operation["from"] = self.from_
        return operation


class ValidationErrorOut(BaseModel):
    """One problem, shaped like an error of a 422 problem: ``hint`` is left out when there is none."""

    code: str
    pointer: str
    message: str
    hint: Annotated[str | None, Field(exclude_if=lambda hint: hint is None)] = None


class ValidateRequest(StrictModel):
    document: Document


class ValidateResponse(BaseModel):
    valid: bool
    dsl_version: str
    content_hash: str | None
    errors: list[ValidationErrorOut]


class CreateStrategyRequest(StrictModel):
    document: Document
    session_id: uuid.UUID | None = None
    confirm: bool = Field(default=False, description="Mark the strategy confirmed at once.")


class UpdateStrategyRequest(StrictModel):
    document: Document
    expected_version: VersionNumber = Field(description="The version you edited; a stale one gets 409.")


class PatchStrategyRequest(StrictModel):
    patch: list[PatchOperation] = Field(min_length=1, max_length=200)
    expected_version: VersionNumber


class RollbackRequest(StrictModel):
    version: VersionNumber = Field(description="The version whose document becomes current again.")
    expected_version: VersionNumber


class StrategySummary(BaseModel):
    id: uuid.UUID
    name: str
    description: str | None
    status: StrategyStatus
    current_version: int
    dsl_version: str
    market: str | None
    symbols: list[str]
    timeframe: str | None
    created_at: datetime
    updated_at: datetime


class StrategyOut(StrategySummary):
    session_id: uuid.UUID | None
    confirmed_at: datetime | None
    content_hash: str
    document: dict[str, Any]


class StrategyList(BaseModel):
    items: list[StrategySummary]
    next_cursor: str | None


class RevisionSummary(BaseModel):
    version: int
    change_type: ChangeType
    source_version: int | None
    content_hash: str
    created_at: datetime


class RevisionOut(RevisionSummary):
    document: dict[str, Any]
    patch: list[dict[str, Any]] | None


class DiffOut(BaseModel):
    from_version: int
    to_version: int
    patch: list[dict[str, Any]] = Field(
        description="RFC 6902 operations turning from_version into to_version."
    )


class TunableParameterOut(BaseModel):
    """Bounds are what the language accepts; an ``int`` parameter's numbers are JSON integers."""

    pointer: str
    label: str
    kind: str
    type: Literal["int", "float"]
    value: int | float
    minimum: int | float
    maximum: int | float
    exclusive_minimum: bool
    exclusive_maximum: bool


class TunableParametersOut(BaseModel):
    strategy_id: uuid.UUID
    version: int
    parameters: list[TunableParameterOut]


class DraftRequest(StrictModel):
    document: Document
    session_id: uuid.UUID | None = None


class DraftOut(BaseModel):
    id: uuid.UUID
    session_id: uuid.UUID | None
    document: dict[str, Any]
    updated_at: datetime
    expires_at: datetime
    validation: ValidateResponse


class ExampleOut(BaseModel):
    slug: str
    name: str
    description: str
    tags: list[str]
    market: str
    symbols: list[str]
    timeframe: str


class ExampleDetail(ExampleOut):
    document: dict[str, Any]
