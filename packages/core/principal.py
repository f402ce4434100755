"""Who is calling. Every use-case takes one; every repository is scoped by its user."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """Always a user, sometimes acting within one chat session (MCP calls of a chat turn)."""

    user_id: uuid.UUID
    session_id: uuid.UUID | None = None
