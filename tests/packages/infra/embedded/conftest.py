"""Scratch folders for embedded servers.

Not pytest's tmp_path: a concurrent pytest session on the machine resets ``/tmp/pytest-of-<user>`` to
mode 0700, which would lock the unprivileged embedded PostgreSQL user out of its data folder.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="minsy-embedded-test-"))


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    path = _scratch()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def module_scratch_dir() -> Iterator[Path]:
    path = _scratch()
    yield path
    shutil.rmtree(path, ignore_errors=True)
