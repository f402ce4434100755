"""Alembic is the only way tables are made: the migrated schema matches the models exactly."""

from __future__ import annotations

import uuid
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from packages.infra.embedded import ensure_database

REPO_ROOT = Path(__file__).resolve().parents[4]


def _config(url: str) -> Config:
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    return config


def test_single_head() -> None:
    assert len(ScriptDirectory.from_config(_config("postgresql+asyncpg://unused/x")).get_heads()) == 1


def test_upgrade_matches_models_and_downgrade_is_clean(database_url: str) -> None:
    scratch = make_url(database_url).set(database=f"minsy_mig_{uuid.uuid4().hex[:8]}")
    url = scratch.render_as_string(hide_password=False)
    ensure_database(url, fresh=True)
    config = _config(url)
    command.upgrade(config, "head")
    command.check(config)  # raises if the models and the migrated schema differ
    command.downgrade(config, "base")
    command.upgrade(config, "head")


def test_constraint_names_follow_the_convention() -> None:
    import packages.infra.db.models  # noqa: F401
    from packages.infra.db.base import Base

    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            name = str(constraint.name)
            assert name.startswith(("pk_", "fk_", "uq_", "ck_")), (table.name, name)
