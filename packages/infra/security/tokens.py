"""Signed tokens: API access tokens, opaque refresh tokens, and short-lived MCP tokens.

Access and MCP tokens use different secrets and audiences, so one can never stand in for the other.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"
ACCESS_AUDIENCE = "minsy-api"
MCP_AUDIENCE = "minsy-mcp"


class InvalidToken(Exception):
    """The token is malformed, forged, expired or meant for another audience."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    expires_at: datetime


@dataclass(frozen=True)
class McpClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID | None
    domains: tuple[str, ...]
    expires_at: datetime
    token_id: str


def _now() -> datetime:
    return datetime.now(UTC)


def issue_access_token(
    user_id: uuid.UUID, *, secret: str, issuer: str, ttl: timedelta
) -> tuple[str, datetime]:
    expires = _now() + ttl
    claims = {
        "sub": str(user_id),
        "aud": ACCESS_AUDIENCE,
        "iss": issuer,
        "iat": _now(),
        "exp": expires,
        "typ": "access",
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), expires


def decode_access_token(token: str, *, secret: str, issuer: str) -> AccessClaims:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=ACCESS_AUDIENCE,
            issuer=issuer,
            options={"require": ["sub", "exp", "aud", "iss"]},
        )
        if claims.get("typ") != "access":
            raise InvalidToken("not an access token")
        return AccessClaims(uuid.UUID(claims["sub"]), datetime.fromtimestamp(claims["exp"], UTC))
    except (jwt.PyJWTError, ValueError, KeyError) as exc:
        raise InvalidToken(str(exc)) from exc


def issue_mcp_token(
    user_id: uuid.UUID,
    *,
    secret: str,
    issuer: str,
    ttl: timedelta,
    domains: tuple[str, ...],
    session_id: uuid.UUID | None = None,
) -> tuple[str, datetime]:
    expires = _now() + ttl
    claims: dict[str, object] = {
        "sub": str(user_id),
        "aud": MCP_AUDIENCE,
        "iss": issuer,
        "iat": _now(),
        "exp": expires,
        "jti": secrets.token_hex(8),
        "domains": list(domains),
    }
    if session_id is not None:
        claims["sid"] = str(session_id)
    return jwt.encode(claims, secret, algorithm=ALGORITHM), expires


def decode_mcp_token(token: str, *, secret: str, issuer: str) -> McpClaims:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=MCP_AUDIENCE,
            issuer=issuer,
            options={"require": ["sub", "exp", "aud", "iss", "jti"]},
        )
        session = claims.get("sid")
        domains = claims.get("domains") or []
        if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
            raise InvalidToken("domains claim must be a list of names")
        return McpClaims(
            user_id=uuid.UUID(claims["sub"]),
            session_id=uuid.UUID(session) if session else None,
            domains=tuple(domains),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            token_id=str(claims["jti"]),
        )
    except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
        raise InvalidToken(str(exc)) from exc


def new_refresh_token() -> tuple[str, str]:
    """A random opaque token and the sha256 hex digest we store instead of it."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
