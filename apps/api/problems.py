"""RFC 9457 problem details: the one error shape of the HTTP API, also published in OpenAPI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://docs.minsy.ai/problems/"


class ProblemFieldError(BaseModel):
    code: str
    pointer: str = Field(description="RFC 6901 JSON pointer into the request (body, or /query/<name>, ...)")
    message: str
    hint: str | None = None


class Problem(BaseModel):
    type: str = Field(examples=[PROBLEM_TYPE_BASE + "not_found"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    code: str
    request_id: str | None = None
    errors: list[ProblemFieldError] | None = None


def problem_body(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str | None,
    request_id: str | None,
    errors: list[dict[str, str]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
        "request_id": request_id,
    }
    if errors:
        body["errors"] = errors
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    return body


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the error statuses a route can answer."""
    descriptions = {
        400: "Bad request",
        401: "Missing or invalid credentials",
        403: "Not allowed",
        404: "Not found (also for objects owned by someone else)",
        409: "Conflict with the current state",
        413: "Request body too large",
        422: "Validation failed",
        429: "Too many requests",
        503: "A dependency is unavailable",
    }
    return {
        status: {
            "model": Problem,
            "description": descriptions.get(status, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
