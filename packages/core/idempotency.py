"""Idempotent submission: the same key and body give the first job back (the rules live in the job kit)."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel

from packages.domain.strategy.canonical import canonical_json


def request_fingerprint(body: BaseModel) -> str:
    """SHA-256 of the request body's canonical JSON: two bodies meaning the same thing match."""
    return hashlib.sha256(canonical_json(body.model_dump(mode="json"))).hexdigest()
