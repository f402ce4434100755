"""Example strategies shipped as package data: the template library users and the model start from.

Each ``<slug>.json`` file is a complete, valid document whose universe uses the offline data:
US stocks AAPL, MSFT, IBM, GOOG (daily), the SPX and IXIC indices (daily, market us_stocks) and
EURUSD (hourly). ``x-tags`` lists what each example demonstrates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class ExampleStrategy:
    slug: str
    name: str
    description: str
    tags: tuple[str, ...]
    market: str
    symbols: tuple[str, ...]
    timeframe: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "name": self.name,
            "description": self.description,
            "tags": list(self.tags),
            "market": self.market,
            "symbols": list(self.symbols),
            "timeframe": self.timeframe,
        }


@lru_cache(maxsize=1)
def _documents() -> dict[str, str]:
    folder = resources.files(__package__)
    return {
        entry.name.removesuffix(".json"): entry.read_text(encoding="utf-8")
        for entry in sorted(folder.iterdir(), key=lambda item: item.name)
        if entry.name.endswith(".json")
    }


def list_examples() -> list[ExampleStrategy]:
    """Summaries of every example, sorted by slug."""
    examples = []
    for slug in _documents():
        document = get_example(slug)
        examples.append(
            ExampleStrategy(
                slug=slug,
                name=document["metadata"]["name"],
                description=document["metadata"].get("description", ""),
                tags=tuple(document.get("x-tags", ())),
                market=document["universe"]["market"],
                symbols=tuple(document["universe"]["symbols"]),
                timeframe=document["timeframe"],
            )
        )
    return examples


def example_slugs() -> tuple[str, ...]:
    return tuple(_documents())


def get_example(slug: str) -> dict[str, Any]:
    """A fresh copy of the example document; ``KeyError`` for an unknown slug."""
    text = _documents().get(slug)
    if text is None:
        raise KeyError(f"no example strategy {slug!r}; known: {', '.join(_documents())}")
    document: dict[str, Any] = json.loads(text)
    return document
