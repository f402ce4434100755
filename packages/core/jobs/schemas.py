from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL_STATUSES: tuple[JobStatus, ...] = ("succeeded", "failed", "cancelled")
ACTIVE_STATUSES: tuple[JobStatus, ...] = ("queued", "running")


class CancelOut(BaseModel):
    """The answer to a cancel request: where the job stands and what happens next."""

    id: uuid.UUID
    status: str = Field(description="The job's status as its own endpoint reports it.")
    cancel_requested: bool
    message: str
