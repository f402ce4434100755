"""Pure-ASGI middleware: request ids, body size limits and one structured log line per request."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from apps.api.problems import PROBLEM_MEDIA_TYPE, problem_body
from packages.infra.observability.logging import request_id_var, user_id_var
from packages.infra.observability.metrics import observe_request

log = logging.getLogger("minsy.api.access")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = supplied if _VALID_REQUEST_ID.match(supplied) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        user_token = user_id_var.set(None)
        started = time.perf_counter()
        status_holder = {"status": 500}

        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                status_holder["status"] = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Answered here rather than by Starlette's outermost error middleware, which re-raises
            # to the server: uvicorn then drops the keep-alive connection, and that answer would
            # also miss the request id.
            log.exception("unhandled error", extra={"path": scope["path"]})
            status_holder["status"] = 500
            if response_started:
                # Headers are out (a stream broke midway): end the body cleanly instead.
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                start, body = _internal_error(scope, request_id)
                await send_with_id(start)
                await send(body)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            observe_request(scope["method"], route, status_holder["status"], elapsed)
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status_holder["status"],
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            user_id_var.reset(user_token)
            request_id_var.reset(token)


def _internal_error(scope: Scope, request_id: str) -> tuple[Message, Message]:
    """The 500 problem+json as the two ASGI messages that send it."""
    payload = json.dumps(
        problem_body(
            status=500,
            code="internal_error",
            title="Internal server error",
            detail="Something went wrong on our side; the request id identifies it in our logs.",
            instance=scope["path"],
            request_id=request_id,
        )
    ).encode()
    start: Message = {
        "type": "http.response.start",
        "status": 500,
        "headers": [
            (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
            (b"content-length", str(len(payload)).encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": payload}


def _route_template(scope: Scope) -> str:
    """The matched route with its parameters as ``{name}``, so ids do not explode metric labels."""
    if scope.get("route") is None:
        return "unmatched"
    segments = scope["path"].split("/")
    values = {str(value): name for name, value in (scope.get("path_params") or {}).items()}
    return "/".join(f"{{{values[s]}}}" if s in values else s for s in segments)


class BodySizeLimitMiddleware:
    """Refuse bodies over the limit with 413, whether or not the client declared a length."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, overrides: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Path prefixes with their own limit (uploads).
        self.overrides = overrides or {}

    def _limit_for(self, path: str) -> int:
        for prefix, limit in self.overrides.items():
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._reject(scope, send, limit)
            return
        received = 0
        rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            message = await receive()
            if message["type"] == "http.request" and not rejected:
                received += len(message.get("body", b""))
                if received > limit:
                    rejected = True
                    await self._reject(scope, send, limit)
                    # The app stops reading as if the client went away; its own answer is dropped below.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not rejected:
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not rejected:
                raise

    @staticmethod
    async def _reject(scope: Scope, send: Send, limit: int) -> None:
        body = problem_body(
            status=413,
            code="payload_too_large",
            title="Request body too large",
            detail=f"The request body exceeds {limit} bytes.",
            instance=scope["path"],
            request_id=scope.get("state", {}).get("request_id"),
        )
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
