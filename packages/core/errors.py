"""Errors every surface understands: the API renders them as RFC 9457 problem+json, MCP tools as
``isError`` results, tasks as a job's ``error`` field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldError:
    """One problem with one input value; ``pointer`` is an RFC 6901 JSON pointer into the input."""

    code: str
    pointer: str
    message: str
    hint: str | None = None

    def as_dict(self) -> dict[str, str]:
        payload = {"code": self.code, "pointer": self.pointer, "message": self.message}
        if self.hint:
            payload["hint"] = self.hint
        return payload


@dataclass
class AppError(Exception):
    detail: str
    errors: list[FieldError] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __str__(self) -> str:
        return self.detail


class ValidationFailed(AppError):
    status = 422
    code = "validation_failed"
    title = "The request is not valid"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"
    title = "Authentication required"


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class NotFound(AppError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(AppError):
    status = 409
    code = "conflict"
    title = "Conflict with the current state"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"
    title = "Request body too large"


class RateLimited(AppError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"


class ServiceUnavailable(AppError):
    status = 503
    code = "service_unavailable"
    title = "A dependency is unavailable"
