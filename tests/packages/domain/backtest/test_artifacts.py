"""Packing a result's named blobs into the one ``bytes`` value a job stores, and reading it back."""

from __future__ import annotations

import pytest

from packages.domain.backtest.artifacts import ArtifactsCorrupt, pack_artifacts, unpack_artifacts


def test_artifacts_round_trip_and_refuse_damage() -> None:
    blobs = {"b": b"\x00\x01", "a": b"xyz", "empty": b""}
    packed = pack_artifacts(blobs)
    assert unpack_artifacts(packed) == blobs
    assert pack_artifacts(dict(reversed(list(blobs.items())))) == packed
    with pytest.raises(ArtifactsCorrupt):
        unpack_artifacts(packed[:-1])
    with pytest.raises(ArtifactsCorrupt):
        unpack_artifacts(b"something else")
