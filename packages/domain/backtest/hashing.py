"""Hashes that make a result reproducible: input data snapshot and order list.

Both identify content, they do not authenticate it, so both use XXH3-128 (several GB/s) rather than
a cryptographic hash: the data hash reads every input byte (a million bars in ~2 ms) and the order
list hash the canonical little-endian order records (40,000 orders in ~0.2 ms, against ~2 ms for
SHA-256 on the path every backtest takes).
"""

from __future__ import annotations

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
    digest = xxhash.xxh3_128()
    digest.update(np.asarray(orders.shape, dtype="<i8").tobytes())
    digest.update(_le_bytes(orders))
    return "xxh3_128:" + digest.hexdigest()
