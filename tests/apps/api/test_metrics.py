from __future__ import annotations

import httpx


async def test_metrics_count_requests_by_route_template(api: httpx.AsyncClient) -> None:
    await api.get("/health")
    await api.get("/strategies/00000000-0000-0000-0000-000000000000")
    async with httpx.AsyncClient(transport=api._transport, base_url="http://testserver") as root:
        text = (await root.get("/metrics")).text
    assert 'minsy_http_requests_total{method="GET",route="/api/v1/health",status="200"}' in text
    assert 'route="/api/v1/strategies/{strategy_id}",status="401"' in text
    assert "minsy_http_request_duration_seconds_bucket" in text
