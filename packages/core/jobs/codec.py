"""Bytes for a part's result: JSON values and numpy arrays, compact and byte-stable.

Layout: a format line, one line of canonical JSON (sorted keys) in which every array is replaced
by ``{"$array": n}`` and every non-finite float by ``{"$float": "nan" | "inf" | "-inf"}``, then each
array in ``.npy`` form, the whole payload zlib-compressed. The same value always encodes to the
same bytes, so a part computed again after its worker died stores exactly what it stored before.
No pickle: decoding runs no code.
"""

from __future__ import annotations

import io
import json
import math
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

FORMAT_LINE = b"minsy-part/1\n"
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class PartCorrupt(ValueError):
    """Stored part bytes that this version cannot read."""


def _plain(value: Any, arrays: list[np.ndarray[Any, Any]]) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError("object arrays cannot be stored as part results")
        arrays.append(value)
        return {"$array": len(arrays) - 1}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(key): _plain(item, arrays) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, arrays) for item in value]
    raise TypeError(f"cannot store {type(value).__name__} in a part result")


def encode_part(value: Any) -> bytes:
    arrays: list[np.ndarray[Any, Any]] = []
    tree = _plain(value, arrays)
    buffer = io.BytesIO()
    buffer.write(json.dumps(tree, sort_keys=True, separators=(",", ":"), allow_nan=False).encode() + b"\n")
    for array in arrays:
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return FORMAT_LINE + zlib.compress(buffer.getvalue(), 6)


def _typed(value: Any, arrays: list[np.ndarray[Any, Any]]) -> Any:
    if isinstance(value, dict):
        if value.keys() == {"$array"}:
            return arrays[value["$array"]]
        if value.keys() == {"$float"}:
            return _NON_FINITE[value["$float"]]
        return {key: _typed(item, arrays) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item, arrays) for item in value]
    return value


def decode_part(blob: bytes) -> Any:
    """The value ``encode_part`` stored (tuples come back as lists, numpy scalars as Python ones)."""
    if not blob.startswith(FORMAT_LINE):
        raise PartCorrupt("a stored part result has an unknown format")
    buffer = io.BytesIO(zlib.decompress(blob[len(FORMAT_LINE) :]))
    tree = json.loads(buffer.readline())
    arrays: list[np.ndarray[Any, Any]] = []
    while buffer.tell() < len(buffer.getbuffer()):
        arrays.append(np.load(buffer, allow_pickle=False))
    return _typed(tree, arrays)
