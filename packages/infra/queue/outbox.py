"""Jobs are published only after the transaction that created them has committed.

A unit of work collects ``(task name, args)`` while the transaction is open; ``flush`` sends them
once the commit succeeded, so a worker never sees a job row that does not exist yet, and a rolled
back request enqueues nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol


class TaskSender(Protocol):
    def send_task(self, name: str, args: Any = None, kwargs: Any = None, **options: Any) -> Any: ...


@dataclass(frozen=True)
class PendingTask:
    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    task_id: str | None = None


@dataclass
class JobOutbox:
    sender: TaskSender
    pending: list[PendingTask] = field(default_factory=list)

    def add(self, name: str, *args: Any, task_id: str | None = None, **kwargs: Any) -> None:
        self.pending.append(PendingTask(name, args, kwargs, task_id))

    def discard(self) -> None:
        self.pending.clear()

    async def flush(self) -> None:
        tasks, self.pending = self.pending, []
        for task in tasks:
            # kombu's Redis publish is blocking; keep it off the event loop.
            await asyncio.to_thread(
                self.sender.send_task,
                task.name,
                args=list(task.args),
                kwargs=task.kwargs,
                task_id=task.task_id,
            )
