"""Celery: one app, JSON only, CPU and IO queues, enqueue-after-commit publishing."""
