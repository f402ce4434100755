"""The example library covers the strategy families and every language feature the brief names."""

from __future__ import annotations

from collections import Counter

import pytest

from packages.domain.strategy.examples import example_slugs, get_example, list_examples


def _walk(node: object) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    if isinstance(node, dict):
        found.append(node)
        for child in node.values():
            found.extend(_walk(child))
    elif isinstance(node, list):
        for child in node:
            found.extend(_walk(child))
    return found


def test_library_lists_at_least_twelve_examples() -> None:
    examples = list_examples()
    assert len(examples) >= 12
    assert [e.slug for e in examples] == list(example_slugs())
    for example in examples:
        assert example.name and example.description and example.tags
        assert example.to_dict()["slug"] == example.slug


def test_examples_cover_families_and_features() -> None:
    tags = Counter(tag for example in list_examples() for tag in example.tags)
    for family in (
        "trend_following",
        "mean_reversion",
        "breakout",
        "volatility",
        "multi_timeframe",
        "rotation",
        "long_short",
    ):
        assert tags[family] >= 1, family
    nodes = [node for slug in example_slugs() for node in _walk(get_example(slug))]
    sizing_modes = {node["mode"] for node in nodes if "mode" in node}
    assert sizing_modes == {
        "fixed_quantity",
        "fixed_cash",
        "percent_equity",
        "risk_per_trade",
        "volatility_target",
    }
    order_types = {node["type"] for node in nodes if "price" in node and "type" in node}
    assert order_types == {"limit", "stop"}
    exit_types = {node["type"] for node in nodes if "name" in node and "type" in node}
    assert exit_types == {"signal", "stop_loss", "take_profit", "trailing_stop", "time_exit", "bracket"}
    ops = {node["op"] for node in nodes if "op" in node}
    assert {"within_bars", "bars_since", "sequence", "cross_above", "cross_below"} <= ops
    assert any("timeframe" in node and "indicator" in node for node in nodes)


def test_examples_use_the_offline_data_universe() -> None:
    offline = {("us_stocks", s) for s in ("AAPL", "MSFT", "IBM", "GOOG", "SPX", "IXIC")} | {
        ("forex", "EURUSD")
    }
    for example in list_examples():
        assert {(example.market, symbol) for symbol in example.symbols} <= offline
        if example.market == "forex":
            assert example.timeframe == "1h"
        else:
            assert example.timeframe == "1d"


def test_get_example_returns_fresh_copies_and_rejects_unknown_slugs() -> None:
    first = get_example("sma_crossover_trend")
    first["metadata"]["name"] = "changed"
    assert get_example("sma_crossover_trend")["metadata"]["name"] != "changed"
    with pytest.raises(KeyError):
        get_example("does_not_exist")
