"""The one Celery app. Task modules live beside their features (``packages/core/<feature>/tasks.py``)
and are loaded by the worker entry point (``apps/worker/main.py``); everyone else sends by name."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from packages.infra.queue.queues import ALL_QUEUES
from packages.shared_settings import Settings, get_settings


def route_task(
    name: str, args: object, kwargs: object, options: object, task: object = None, **_: object
) -> dict:
    """Tasks are named ``<queue>.<action>``; the prefix is their queue."""
    queue = name.split(".", 1)[0]
    return {"queue": queue if queue in ALL_QUEUES else "maintenance"}


def create_celery_app(settings: Settings) -> Celery:
    app = Celery("minsy", broker=settings.redis.broker_url, backend=settings.redis.result_url)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        timezone="UTC",
        enable_utc=True,
        task_queues=[Queue(name) for name in ALL_QUEUES],
        task_default_queue="maintenance",
        task_routes=(route_task,),
        # Late acks are opted into per task (only idempotent ones), always with reject-on-worker-lost.
        task_acks_late=False,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        task_track_started=True,
        task_soft_time_limit=settings.celery.task_soft_time_limit_s,
        task_time_limit=settings.celery.task_time_limit_s,
        broker_transport_options={
            "visibility_timeout": settings.celery.visibility_timeout_s,
            # A publish gives up within about half a second when the broker is away: what is not
            # sent stays in the transactional outbox, whose relay retries it with backoff.
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.25,
            "interval_max": 0.5,
        },
        result_backend_transport_options={"visibility_timeout": settings.celery.visibility_timeout_s},
        result_expires=24 * 3600,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=True,
        task_send_sent_event=True,
        beat_schedule={
            "reap-stale-jobs": {
                "task": "maintenance.reap_stale_jobs",
                "schedule": settings.celery.stale_job_sweep_s,
            },
            "market-data-realtime": {
                "task": "market_data.refresh_realtime",
                "schedule": settings.market_data.realtime_interval_s,
                # A tick still queued when the next one is due is stale: drop it.
                "options": {"expires": settings.market_data.realtime_interval_s},
            },
        },
    )
    return app


celery_app = create_celery_app(get_settings())
