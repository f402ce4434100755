from __future__ import annotations

import uuid
from typing import Any

import pytest

from packages.core.errors import RateLimited
from packages.core.http.rate_limit import enforce_rate_limit


async def test_limit_applies_per_key_and_says_when_to_retry(api_app: Any) -> None:
    redis = api_app.state.resources.redis
    key = f"test:{uuid.uuid4().hex}"
    for _ in range(3):
        await enforce_rate_limit(redis, key, limit=3, window_s=60)
    with pytest.raises(RateLimited) as caught:
        await enforce_rate_limit(redis, key, limit=3, window_s=60)
    assert 1 <= int(caught.value.headers["Retry-After"]) <= 60
    await enforce_rate_limit(redis, key + "-other", limit=3, window_s=60)
