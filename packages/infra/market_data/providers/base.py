"""Shared provider machinery: token-bucket rate limiting, retries with backoff, error classification.

Each provider classifies its library's exceptions into three kinds:

- ``transient``: worth retrying (timeouts, HTTP 429/5xx, exchange busy);
- ``offline``: the host cannot be reached at all (connection refused, DNS failure);
- ``fatal``: retrying cannot help (unknown symbol, bad request, bad credentials).

``call_with_retries`` retries the first two kinds with exponential backoff and full jitter, then
raises ``ProviderUnavailable``; a fatal error raises ``ProviderError`` at once.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from packages.domain.market_data.bars import Market, Timeframe
from packages.domain.market_data.sync import ProviderError, ProviderUnavailable

ErrorKind = Literal["transient", "offline", "fatal"]
Sleep = Callable[[float], None]


class TokenBucket:
    """Allows bursts of ``capacity`` requests and ``rate_per_s`` requests per second on average."""

    def __init__(
        self,
        rate_per_s: float,
        capacity: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        self.rate_per_s = rate_per_s
        self.capacity = capacity if capacity is not None else max(1.0, rate_per_s)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self, tokens: float = 1.0) -> float:
        """Take ``tokens``, sleeping until they are available; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate_per_s)
                self._updated = now
                if self._tokens >= tokens:
                    self._tokens -= tokens
                    return waited
                shortfall = (tokens - self._tokens) / self.rate_per_s
            self._sleep(shortfall)
            waited += shortfall


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    sleep: Sleep = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        """Full-jitter backoff for the wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return self.rng.uniform(0.0, ceiling)


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    name: str
    markets: tuple[Market, ...]
    timeframes: tuple[Timeframe, ...]
    requires_credentials: bool
    max_bars_per_request: int
    description: str

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "markets": [market.value for market in self.markets],
            "timeframes": [timeframe.value for timeframe in self.timeframes],
            "requires_credentials": self.requires_credentials,
            "max_bars_per_request": self.max_bars_per_request,
            "description": self.description,
        }


def call_with_retries[T](
    request: Callable[[], T],
    *,
    describe: str,
    classify: Callable[[Exception], ErrorKind],
    policy: RetryPolicy,
    limiter: TokenBucket | None,
) -> T:
    last_error: Exception | None = None
    last_kind: ErrorKind = "transient"
    for attempt in range(1, policy.max_attempts + 1):
        if limiter is not None:
            limiter.acquire()
        try:
            return request()
        except Exception as error:
            kind = classify(error)
            if kind == "fatal":
                raise ProviderError(f"{describe}: {error}") from error
            last_error, last_kind = error, kind
            if attempt < policy.max_attempts:
                policy.sleep(policy.delay(attempt))
    reason = "unreachable (offline?)" if last_kind == "offline" else "still failing"
    raise ProviderUnavailable(
        f"{describe}: {reason} after {policy.max_attempts} attempts: {type(last_error).__name__}: {last_error}"
    ) from last_error


class ProviderBase:
    """Holds metadata, the limiter and the retry policy; subclasses implement ``fetch_bars``."""

    metadata: ProviderMetadata

    def __init__(self, *, rate_per_s: float, retry: RetryPolicy | None, limiter: TokenBucket | None) -> None:
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or TokenBucket(rate_per_s)

    @property
    def name(self) -> str:
        return self.metadata.name

    def supports(self, market: Market, timeframe: Timeframe) -> bool:
        return market in self.metadata.markets and timeframe in self.metadata.timeframes

    def max_bars_per_request(self, timeframe: Timeframe) -> int:
        return self.metadata.max_bars_per_request

    def _require(self, timeframe: Timeframe) -> None:
        if timeframe not in self.metadata.timeframes:
            supported = ", ".join(tf.value for tf in self.metadata.timeframes)
            raise ProviderError(f"{self.name} does not serve {timeframe.value} bars (supported: {supported})")
