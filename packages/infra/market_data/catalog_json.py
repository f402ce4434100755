"""A ``CatalogSink``/``CatalogReader`` kept in one JSON file (tests, CLI, single-process setups)."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from packages.domain.market_data.catalog import CatalogEntry


class JsonCatalog:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            loaded: dict[str, dict[str, Any]] = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        return loaded

    @staticmethod
    def _key(namespace: str, market: str, symbol: str, timeframe: str) -> str:
        return "|".join((namespace, market, symbol, timeframe))

    def _update(self, key: str, entry: CatalogEntry | None) -> None:
        with open(self.path.with_suffix(".lock"), "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = self._load()
            if entry is None:
                entries.pop(key, None)
            else:
                entries[key] = entry.to_dict()
            temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps(entries, indent=1, sort_keys=True))
            os.replace(temporary, self.path)

    def upsert_dataset(self, entry: CatalogEntry) -> None:
        self._update(self._key(*entry.key), entry)

    def remove_dataset(self, namespace: str, market: str, symbol: str, timeframe: str) -> None:
        self._update(self._key(namespace, market, symbol, timeframe), None)

    def list_datasets(
        self, *, namespaces: Sequence[str] = ("public",), market: str | None = None
    ) -> list[CatalogEntry]:
        entries = [CatalogEntry.from_dict(payload) for payload in self._load().values()]
        return sorted(
            (e for e in entries if e.namespace in namespaces and (market is None or e.market == market)),
            key=lambda e: e.key,
        )

    def get_dataset(self, namespace: str, market: str, symbol: str, timeframe: str) -> CatalogEntry | None:
        payload = self._load().get(self._key(namespace, market, symbol, timeframe))
        return None if payload is None else CatalogEntry.from_dict(payload)
