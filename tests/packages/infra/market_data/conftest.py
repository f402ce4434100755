"""Offline HTTP plumbing: recorded responses served through the libraries' own session objects."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from requests.adapters import BaseAdapter

from packages.infra.market_data.providers.base import RetryPolicy, TokenBucket

FIXTURES = Path(__file__).parent / "fixtures"

Responder = Callable[[requests.PreparedRequest], tuple[int, str]]


def read_fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


class RecordedAdapter(BaseAdapter):
    """A ``requests`` transport answering from recorded bodies; a responder may raise to simulate outages."""

    def __init__(self, responder: Responder) -> None:
        super().__init__()
        self.responder = responder
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:  # type: ignore[override]
        self.requests.append(request)
        status, body = self.responder(request)
        response = requests.Response()
        response.status_code = status
        response.reason = {
            200: "OK",
            403: "Forbidden",
            429: "Too Many Requests",
            503: "Service Unavailable",
        }.get(status, "")
        response._content = body.encode()
        response.headers["Content-Type"] = "application/json"
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        return None


def make_recorded_session(responder: Responder) -> tuple[requests.Session, RecordedAdapter]:
    adapter = RecordedAdapter(responder)
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session, adapter


class SleepRecorder:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture()
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture()
def fast_retry(sleeps: SleepRecorder) -> RetryPolicy:
    return RetryPolicy(max_attempts=3, base_delay_s=0.5, max_delay_s=4.0, sleep=sleeps, rng=random.Random(1))


@pytest.fixture()
def unlimited() -> TokenBucket:
    return TokenBucket(rate_per_s=1e9, capacity=1e9)


@pytest.fixture()
def fixture_text() -> Callable[[str], str]:
    """Body of a recorded response file in ``fixtures/``."""
    return read_fixture


@pytest.fixture()
def recorded_session() -> Callable[[Responder], tuple[requests.Session, RecordedAdapter]]:
    """Factory for a ``requests.Session`` whose transport answers through a responder."""
    return make_recorded_session
