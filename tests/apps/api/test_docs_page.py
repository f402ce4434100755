"""The interactive API docs render in a real browser with no network: every asset is served by
the API itself."""

from __future__ import annotations

from typing import Any

from apps.api.main import create_app
from tests.support.browser import offline_page
from tests.support.live_server import serve


def test_swagger_ui_renders_offline(settings: Any) -> None:
    with serve(create_app(settings)) as base_url, offline_page() as (page, refused):
        page.goto(f"{base_url}/api/v1/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=30_000)
        title = page.inner_text(".information-container .title")
        paths = page.eval_on_selector_all(
            ".opblock-summary-path", "nodes => nodes.map(n => n.getAttribute('data-path'))"
        )

    assert "Minsy API" in title
    assert "/api/v1/backtests" in paths and "/api/v1/auth/login" in paths
    assert refused == []  # nothing was fetched from outside the machine
