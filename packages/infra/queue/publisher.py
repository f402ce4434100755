"""Hands outbox messages to the broker. Blocking (kombu), so callers run it off the event loop."""

from __future__ import annotations

from typing import Any, Protocol


class TaskSender(Protocol):
    def send_task(self, name: str, args: Any = None, kwargs: Any = None, **options: Any) -> Any: ...


class BrokerPublisher:
    def __init__(self, sender: TaskSender) -> None:
        self.sender = sender

    def publish(self, kind: str, name: str, payload: dict[str, Any]) -> None:
        """Send one message or raise; never retries by itself (the outbox relay does, with backoff)."""
        if kind != "task":
            raise ValueError(f"unknown outbox message kind {kind!r}")
        self.sender.send_task(
            name,
            args=payload.get("args", []),
            kwargs=payload.get("kwargs", {}),
            retry=False,
            # Job tasks report through their database rows, never Celery's result store; touching
            # that store here would make a publisher with Redis away wait on its reconnects.
            ignore_result=True,
        )
