"""Headless Chromium for page tests, through Playwright, with every request that leaves the
machine refused, so a page that needs the network fails its test."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Page, sync_playwright

_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_executable() -> str | None:
    """The system Chromium (Debian's ``chromium``); without one, Playwright's own build, downloaded
    once (``playwright install chromium``), and None tells Playwright to use it."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    installed = subprocess.run(
        [sys.executable, "-m", "playwright", "install", "chromium"], capture_output=True, text=True
    )
    if installed.returncode != 0:
        raise RuntimeError(
            "Page tests need Chromium: install the system package (apt-get install chromium) or let "
            f"Playwright fetch its build (uv run playwright install chromium).\n{installed.stderr[-2000:]}"
        )
    return None


@contextmanager
def offline_page() -> Iterator[tuple[Page, list[str]]]:
    """A fresh page and the list of off-machine URLs it tried (and was refused)."""
    refused: list[str] = []

    def only_local(route: Any) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if host in _LOCAL_HOSTS:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with tempfile.TemporaryDirectory(prefix="minsy-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=chromium_executable(), headless=True, args=_CHROMIUM_ARGS
        )
        try:
            context.route("**/*", only_local)
            yield context.new_page(), refused
        finally:
            context.close()
