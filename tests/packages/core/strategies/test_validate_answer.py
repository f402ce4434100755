"""``POST /strategies/validate`` reports errors exactly as the 422 problem of a refused save does."""

from __future__ import annotations

import copy
from typing import Any

import httpx

from packages.domain.strategy.examples import get_example


async def test_validate_errors_match_the_problem_errors_and_omit_absent_hints(
    api: httpx.AsyncClient, make_account: Any
) -> None:
    account = await make_account()
    document = copy.deepcopy(get_example("sma_crossover_trend"))
    # Two unknown fields: one close to a real name (hinted), one far from every name (no hint).
    document["metadata"]["nme"] = "typo"
    document["metadata"]["zzzz"] = "stray"

    verdict = (
        await api.post("/strategies/validate", json={"document": document}, headers=account.headers)
    ).json()
    refused = await api.post("/strategies", json={"document": document}, headers=account.headers)
    assert refused.status_code == 422, refused.text
    problem_errors = refused.json()["errors"]

    assert verdict["valid"] is False
    assert [{**e, "pointer": "/document" + e["pointer"]} for e in verdict["errors"]] == problem_errors
    hinted = {e["pointer"]: "hint" in e for e in verdict["errors"]}
    assert hinted == {"/metadata/nme": True, "/metadata/zzzz": False}
    assert all(e.get("hint") is not None for e in verdict["errors"] if "hint" in e)
