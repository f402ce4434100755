"""Queue names and which worker consumes them."""

from __future__ import annotations

from typing import Final

CPU_QUEUES: Final = ("backtest", "stress")
IO_QUEUES: Final = ("market_data", "paper_trading", "notifications", "maintenance")
ALL_QUEUES: Final = CPU_QUEUES + IO_QUEUES

WORKER_KINDS: Final = {"cpu": CPU_QUEUES, "io": IO_QUEUES}
