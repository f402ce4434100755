"""Idempotency keys for job-creating requests: the same key and body give the first job back."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import Header
from pydantic import BaseModel

from packages.domain.strategy.canonical import canonical_json

IDEMPOTENCY_HEADER: dict[str, Any] = {
    "alias": "Idempotency-Key",
    "min_length": 1,
    "max_length": 200,
    "pattern": r"^[\x21-\x7e]+$",
}


def idempotency_header(description: str) -> Any:
    return Header(description=description, **IDEMPOTENCY_HEADER)


def request_fingerprint(body: BaseModel) -> str:
    """SHA-256 of the request body's canonical JSON: two bodies meaning the same thing match."""
    return hashlib.sha256(canonical_json(body.model_dump(mode="json"))).hexdigest()
