"""``GET /strategies/{id}/tunable-parameters`` as JSON: integer knobs are integers, distances bounded."""

from __future__ import annotations

import copy
from typing import Any

import httpx

from packages.domain.strategy.examples import get_example


async def test_integer_parameters_are_json_integers_and_stops_are_bounded(
    api: httpx.AsyncClient, make_account: Any
) -> None:
    account = await make_account()
    document = copy.deepcopy(get_example("rsi_mean_reversion"))
    created = await api.post("/strategies", json={"document": document}, headers=account.headers)
    assert created.status_code == 201, created.text
    answer = await api.get(f"/strategies/{created.json()['id']}/tunable-parameters", headers=account.headers)
    assert answer.status_code == 200, answer.text
    parameters = {p["pointer"]: p for p in answer.json()["parameters"]}

    period = parameters["/factors/0/params/period"]
    assert period["type"] == "int"
    assert all(type(period[f]) is int for f in ("value", "minimum", "maximum")), period
    assert all(type(p["maximum"]) is float for p in parameters.values() if p["type"] == "float")

    stop = next(p for p in parameters.values() if p["label"] == "long.hard_stop.distance.value")
    assert document["trade"]["long"]["exits"][2]["distance"]["unit"] == "percent"
    # A long's percent stop at 100% or more would sit at a price of zero: the validator refuses it.
    assert (stop["minimum"], stop["exclusive_minimum"], stop["maximum"], stop["exclusive_maximum"]) == (
        0.0,
        True,
        100.0,
        True,
    )
