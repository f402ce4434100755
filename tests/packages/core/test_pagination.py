"""The one cursor codec: a round trip gives the sort key back; anything the API did not issue for
this list is a 422 at /query/cursor."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest

from packages.core.errors import ValidationFailed
from packages.core.pagination import decode_cursor, encode_cursor

KEY = (datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), uuid.UUID(int=42))
TYPES = (datetime, uuid.UUID)


def test_a_cursor_round_trips_and_is_url_safe() -> None:
    cursor = encode_cursor("backtest_jobs", KEY)
    assert decode_cursor("backtest_jobs", cursor, TYPES) == KEY
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    mixed = (True, "us_stocks", "AAPL", 7)
    assert decode_cursor("symbols", encode_cursor("symbols", mixed), (bool, str, str, int)) == mixed


def _forged(payload: object) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    return body + "." + encode_cursor("backtest_jobs", KEY).split(".")[1]


@pytest.mark.parametrize(
    "cursor",
    [
        encode_cursor("market_data_sync_jobs", KEY),  # another list's
        encode_cursor("backtest_jobs", KEY)[:-2],  # mangled digest
        encode_cursor("backtest_jobs", KEY).split(".")[0],  # no digest
        _forged([1, ["2026-01-01T00:00:00+00:00", str(uuid.UUID(int=1))]]),  # edited values
        "bm90LWEtY3Vyc29y",
        "%%%",
        "",
        "\x00",
    ],
)
def test_a_cursor_the_api_did_not_issue_for_this_list_is_refused(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        decode_cursor("backtest_jobs", cursor, TYPES)
    [error] = refused.value.errors
    assert (error.code, error.pointer) == ("invalid_cursor", "/query/cursor")


def test_values_of_the_wrong_type_or_count_are_refused() -> None:
    for values, types in (
        ((1, 2), TYPES),
        ((KEY[0],), TYPES),
        ((datetime(2026, 1, 1), uuid.UUID(int=1)), TYPES),  # a time without its offset
        ((True,), (int,)),  # a bool is not a number here
    ):
        with pytest.raises(ValidationFailed):
            decode_cursor("scope", encode_cursor("scope", values), types)  # type: ignore[arg-type]
