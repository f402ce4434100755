"""Every error leaves the API as RFC 9457 problem+json with the request id.

Unexpected exceptions become a 500 problem in ``RequestContextMiddleware``, which keeps the connection
open and the request id on the answer."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from apps.api.problems import PROBLEM_MEDIA_TYPE, problem_body
from packages.core.errors import AppError

_HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("payload_too_large", "Request body too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    429: ("rate_limited", "Too many requests"),
}


def _problem(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = problem_body(
        status=status,
        code=code,
        title=title,
        detail=detail,
        instance=request.url.path,
        request_id=getattr(request.state, "request_id", None),
        errors=errors,
        extra=extra,
    )
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _pointer(location: tuple[Any, ...] | list[Any]) -> str:
    """FastAPI's error location as an RFC 6901 pointer: body fields from the body root, others by part."""
    parts = list(location)
    if parts and parts[0] == "body":
        parts = parts[1:]
    escaped = [str(p).replace("~", "~0").replace("/", "~1") for p in parts]
    return "/" + "/".join(escaped) if escaped else ""


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return _problem(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        errors=[e.as_dict() for e in exc.errors] or None,
        extra=exc.extra,
        headers=exc.headers or None,
    )


def _field_error(err: Any) -> dict[str, str]:
    code = str(err.get("type", "invalid"))
    location = tuple(err.get("loc", ()))
    if code == "json_invalid":
        # The location is a character offset, not a field: point at the document and say where.
        where = location[-1] if location else "?"
        return {"code": code, "pointer": "", "message": f"{err.get('msg')} at character {where}"}
    pointer = _pointer(location)
    inner = (err.get("ctx") or {}).get("pointer")
    if isinstance(inner, str):
        # A model-level check (e.g. NUL characters) names the offending value inside the model.
        pointer += inner
    return {"code": code, "pointer": pointer, "message": str(err.get("msg"))}


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_field_error(err) for err in exc.errors()]
    malformed = any(e["code"] == "json_invalid" for e in errors)
    return _problem(
        request,
        status=400 if malformed else 422,
        code="malformed_json" if malformed else "validation_failed",
        title="Malformed JSON body" if malformed else "The request is not valid",
        detail="The body is not valid JSON." if malformed else f"{len(errors)} field(s) failed validation.",
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, title = _HTTP_CODES.get(exc.status_code, ("http_error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    return _problem(
        request,
        status=exc.status_code,
        code=code,
        title=title,
        detail=detail,
        headers=dict(exc.headers or {}) or None,
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
