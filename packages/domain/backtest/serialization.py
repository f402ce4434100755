"""Canonical JSON and compact array encoding for storing results.

``canonical_json`` is byte-stable: sorted keys, no whitespace, floats in Python's shortest
round-trip repr, NaN and infinities as ``null``, numpy scalars and arrays converted. The same result
object always serialises to the same bytes, which the determinism test relies on.
"""

from __future__ import annotations

import base64
import json
import math
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]

_ZLIB_LEVEL = 6


def to_jsonable(value: Any) -> JsonValue:
    """Convert numpy values, tuples and non-finite floats into plain JSON values."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        to_jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def encode_array(array: npt.NDArray[Any]) -> bytes:
    """Compact, self-describing bytes: a small JSON header line, then the zlib-compressed buffer."""
    contiguous = np.ascontiguousarray(array)
    header = json.dumps(
        {"dtype": contiguous.dtype.str, "shape": list(contiguous.shape)}, separators=(",", ":")
    )
    return header.encode("ascii") + b"\n" + zlib.compress(contiguous.tobytes(), _ZLIB_LEVEL)


def decode_array(blob: bytes) -> npt.NDArray[Any]:
    header, _, payload = blob.partition(b"\n")
    meta = json.loads(header)
    data = zlib.decompress(payload)
    return np.frombuffer(data, dtype=np.dtype(meta["dtype"])).reshape(meta["shape"]).copy()


def encode_array_text(array: npt.NDArray[Any]) -> str:
    """``encode_array`` as base64 text, for JSON documents."""
    return base64.b64encode(encode_array(array)).decode("ascii")


def decode_array_text(text: str) -> npt.NDArray[Any]:
    return decode_array(base64.b64decode(text))
