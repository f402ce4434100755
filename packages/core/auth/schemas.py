from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, EmailStr, Field, StringConstraints

from packages.core.schemas import StrictModel

Password = Annotated[str, StringConstraints(min_length=8, max_length=256)]


class RegisterRequest(StrictModel):
    email: EmailStr
    password: Password
    display_name: (
        Annotated[str, StringConstraints(min_length=1, max_length=120, strip_whitespace=True)] | None
    ) = None


class LoginRequest(StrictModel):
    email: EmailStr
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class RefreshRequest(StrictModel):
    refresh_token: Annotated[str, StringConstraints(min_length=10, max_length=512)]


class McpTokenRequest(StrictModel):
    session_id: uuid.UUID | None = Field(
        default=None, description="Bind the token to one of your chat sessions."
    )
    domains: list[str] | None = Field(
        default=None, description="MCP domains the token may call; default all five.", max_length=5
    )
    ttl_minutes: int | None = Field(
        default=None, ge=1, le=24 * 60, description="Lifetime; default 15 minutes."
    )


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    display_name: str | None
    created_at: datetime


class TokenPair(BaseModel):
    token_type: str = "bearer"
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    refresh_token_expires_at: datetime


class AuthResponse(BaseModel):
    user: UserOut
    tokens: TokenPair


class McpTokenResponse(BaseModel):
    token_type: str = "bearer"
    token: str
    expires_at: datetime
    session_id: uuid.UUID | None
    servers: dict[str, str] = Field(description="Streamable-HTTP URL of each MCP domain the token may call.")
