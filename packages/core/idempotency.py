"""Idempotent submission: the same key and body give the first job back (the rules live in
``packages.core.jobs.submit``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pydantic import BaseModel

from packages.domain.strategy.canonical import canonical_json

HEADER_POINTER = "/header/Idempotency-Key"
ARGUMENT_POINTER = "/idempotency_key"


def request_fingerprint(body: BaseModel) -> str:
    """SHA-256 of the request body's canonical JSON: two bodies meaning the same thing match."""
    return hashlib.sha256(canonical_json(body.model_dump(mode="json"))).hexdigest()


@dataclass(frozen=True)
class IdempotencyKey:
    """A caller's key for one intended job, and where it came from (errors point there)."""

    value: str
    pointer: str = HEADER_POINTER

    @classmethod
    def header(cls, value: str | None) -> IdempotencyKey | None:
        """From the optional ``Idempotency-Key`` HTTP header."""
        return None if value is None else cls(value, HEADER_POINTER)

    @classmethod
    def argument(cls, value: str | None) -> IdempotencyKey | None:
        """From an MCP tool's optional ``idempotency_key`` argument."""
        return None if value is None else cls(value, ARGUMENT_POINTER)
