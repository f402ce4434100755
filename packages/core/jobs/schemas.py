from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL_STATUSES: tuple[JobStatus, ...] = ("succeeded", "failed", "cancelled")
ACTIVE_STATUSES: tuple[JobStatus, ...] = ("queued", "running")


class JobOut(BaseModel):
    id: uuid.UUID
    status: JobStatus
    progress: float
    progress_message: str | None
    attempts: int
    cancel_requested: bool
    error: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
