"""The dataset catalog contract.

The Parquet store owns the bars; the catalog is the searchable index of what the store holds
(symbol, market, timeframe, coverage, row count, checksum, provenance). The API reads it to answer
"which symbols exist" without touching files. Production implements both protocols on PostgreSQL;
``packages.infra.market_data.catalog_json.JsonCatalog`` implements them on one JSON file for
tests and the offline CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from packages.domain.market_data.timeconv import iso


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One stored dataset: a (namespace, market, symbol, base timeframe) series of bars.

    ``namespace`` is ``"public"`` for shared data (demo archive, provider syncs) and a per-owner
    value (e.g. ``"user-<id>"``) for private imports, so private datasets never collide with or
    show up beside public ones. ``source`` says how the data arrived: ``archive``, ``import``,
    ``sync``. ``provenance`` records where real data came from (package, file, licence) or
    marks generated data as synthetic.
    """

    namespace: str
    market: str
    symbol: str
    timeframe: str
    start_ns: int | None
    end_ns: int | None
    row_count: int
    checksum: str
    asset_class: str | None = None
    source: str = "archive"
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.namespace, self.market, self.symbol, self.timeframe)

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["coverage_start"] = None if self.start_ns is None else iso(self.start_ns)
        payload["coverage_end"] = None if self.end_ns is None else iso(self.end_ns)
        return payload

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> CatalogEntry:
        names = {
            "namespace",
            "market",
            "symbol",
            "timeframe",
            "start_ns",
            "end_ns",
            "row_count",
            "checksum",
            "asset_class",
            "source",
            "provenance",
        }
        return cls(**{name: value for name, value in payload.items() if name in names})


class CatalogSink(Protocol):
    """Receives dataset registrations from cold start, imports and sync jobs."""

    def upsert_dataset(self, entry: CatalogEntry) -> None: ...

    def remove_dataset(self, namespace: str, market: str, symbol: str, timeframe: str) -> None: ...


class CatalogReader(Protocol):
    """Answers inventory questions without touching the Parquet files."""

    def list_datasets(
        self, *, namespaces: Sequence[str] = ("public",), market: str | None = None
    ) -> list[CatalogEntry]: ...

    def get_dataset(
        self, namespace: str, market: str, symbol: str, timeframe: str
    ) -> CatalogEntry | None: ...
