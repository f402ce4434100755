"""One ``bytes`` value holding a result's named, individually compressed arrays: what
``pipeline.pack_backtest`` packs and a backtest job stores beside its summary.

Layout: a format line, a JSON line listing ``[name, size]`` in name order, then the blobs
(each made by the engine's ``encode_array``) back to back. Names are sorted, so the same blobs always
pack to the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

FORMAT_LINE = b"minsy-backtest-artifacts/1\n"


class ArtifactsCorrupt(ValueError):
    """Stored artifacts that this version cannot read."""


def pack_artifacts(blobs: Mapping[str, bytes]) -> bytes:
    names = sorted(blobs)
    header = json.dumps([[name, len(blobs[name])] for name in names], separators=(",", ":"))
    return b"".join([FORMAT_LINE, header.encode("utf-8"), b"\n", *(blobs[name] for name in names)])


def unpack_artifacts(data: bytes) -> dict[str, bytes]:
    if not data.startswith(FORMAT_LINE):
        raise ArtifactsCorrupt("stored backtest artifacts have an unknown format")
    header, _, payload = data[len(FORMAT_LINE) :].partition(b"\n")
    blobs: dict[str, bytes] = {}
    offset = 0
    for name, size in json.loads(header):
        blobs[name] = payload[offset : offset + size]
        offset += size
    if offset != len(payload):
        raise ArtifactsCorrupt("stored backtest artifacts are truncated")
    return blobs
