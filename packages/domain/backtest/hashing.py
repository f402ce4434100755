"""Hashes that make a result reproducible: input data snapshot and order list.

The data hash reads every input byte, so it uses XXH3-128 (several GB/s; a million bars in ~3 ms)
rather than a cryptographic hash; it identifies a snapshot, it does not authenticate it. The order
list hash is SHA-256 over the canonical little-endian order records.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt
import xxhash

from packages.domain.backtest.bars import UniverseBars


def _le_bytes(array: npt.NDArray[np.generic]) -> memoryview:
    contiguous = np.ascontiguousarray(array)
    if contiguous.dtype.byteorder == ">":
        contiguous = contiguous.astype(contiguous.dtype.newbyteorder("<"))
    return memoryview(contiguous.reshape(-1).view(np.uint8))


def data_snapshot_hash(bars: UniverseBars) -> str:
    digest = xxhash.xxh3_128()
    digest.update("\x1f".join(bars.symbols).encode("utf-8"))
    digest.update(np.asarray(bars.index.shape, dtype="<i8").tobytes())
    digest.update(_le_bytes(bars.index))
    for matrix in (bars.open, bars.high, bars.low, bars.close, bars.volume):
        digest.update(_le_bytes(matrix))
    return "xxh3_128:" + digest.hexdigest()


def order_list_hash(orders: npt.NDArray[np.float64]) -> str:
    digest = hashlib.sha256()
    digest.update(np.asarray(orders.shape, dtype="<i8").tobytes())
    digest.update(_le_bytes(orders))
    return "sha256:" + digest.hexdigest()
