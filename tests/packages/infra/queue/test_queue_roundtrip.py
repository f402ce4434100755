"""A real round trip through every queue, consumed by the worker kind that owns it."""

from __future__ import annotations

import asyncio
from typing import Any

from packages.infra.queue.queues import WORKER_KINDS


async def test_each_queue_round_trips_through_its_worker(celery_workers: dict[str, str]) -> None:
    from packages.infra.queue.celery_app import celery_app

    for queues in WORKER_KINDS.values():
        for queue in queues:
            result = celery_app.send_task(f"{queue}.probe", args=[{"queue": queue}])
            reply: dict[str, Any] = await asyncio.to_thread(result.get, timeout=30)
            assert reply["queue"] == queue
            assert reply["payload"] == {"queue": queue}
            # The task went to the queue named after it, which only that worker kind consumes.
            assert result.backend.get_task_meta(result.id)["status"] == "SUCCESS"


async def test_workers_consume_only_their_queues(celery_workers: dict[str, str]) -> None:
    from packages.infra.queue.celery_app import celery_app

    active = await asyncio.to_thread(celery_app.control.inspect(timeout=2).active_queues)
    assert active is not None
    for kind, node in celery_workers.items():
        assert {q["name"] for q in active[node]} == set(WORKER_KINDS[kind])


def test_celery_configuration_is_safe() -> None:
    from packages.infra.queue.celery_app import celery_app

    conf = celery_app.conf
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_reject_on_worker_lost is True
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
    import apps.worker.main  # noqa: F401  (registers the task modules, as the worker does)

    celery_app.loader.import_default_modules()
    probe = celery_app.tasks["backtest.probe"]
    assert probe.acks_late is True
