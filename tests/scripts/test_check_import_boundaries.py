"""scripts/check_import_boundaries.py against planted violations, a clean tree and the real repository."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "check_import_boundaries.py"


@pytest.fixture(scope="module")
def checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_import_boundaries", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def _tree(root: Path, files: dict[str, str]) -> Path:
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    for package in ("apps", "packages", "packages/domain", "packages/infra", "packages/core"):
        init = root / package / "__init__.py"
        if not init.exists():
            init.parent.mkdir(parents=True, exist_ok=True)
            init.write_text("")
    return root


def _found(checker: ModuleType, root: Path) -> set[tuple[str, int, str]]:
    violations, _count = checker.check_tree(root)
    return {(v.path, v.line, v.rule) for v in violations}


CLEAN = {
    "apps/api/main.py": """
        from packages.core.users import service
        from packages.infra.db import session
        from . import routes
        from .routes import router
    """,
    "apps/api/routes.py": "router = None\n",
    "apps/cli.py": """
        import subprocess
        from packages.shared_settings import get_settings
        TARGET = "apps.api.main:app"  # a module path string, not an import
    """,
    "packages/core/users/service.py": "from packages.infra.db import session\nfrom packages.domain import rules\n",
    "packages/infra/db/session.py": "import sqlalchemy\nfrom packages.domain.rules import check\n",
    "packages/domain/rules.py": """
        import math
        import numpy as np
        from typing import TYPE_CHECKING
        from .strategy import plan
        from . import strategy
        def check() -> None: ...
    """,
    "packages/domain/strategy/__init__.py": "",
    "packages/domain/strategy/plan.py": "from ..rules import check\nfrom packages.domain import rules\n",
    "scripts/tool.py": "import sys\nfrom packages.shared_settings import get_settings\n",
}


def test_a_clean_tree_passes(checker: ModuleType, tmp_path: Path) -> None:
    root = _tree(tmp_path, CLEAN)
    violations, count = checker.check_tree(root)
    assert violations == []
    assert count == len(list(root.rglob("*.py")))


def test_each_rule_catches_its_planted_violation(checker: ModuleType, tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "packages/core/bad.py": "import apps.api.main\n",
            "apps/api/legacy.py": "from src.models import User\n",
            "scripts/old.py": "import src\n",
            "apps/api/cross.py": "from apps.mcp import server\n",
            "apps/worker/cross.py": "import apps.beat.main as beat\n",
            "apps/cli.py": "from apps.api.main import app\n",
            "packages/domain/impure.py": "import numpy\nfrom sqlalchemy import select\nimport httpx\n",
            "packages/domain/queue.py": "from celery import shared_task\n",
            "packages/domain/reach.py": "from packages.infra import db\n",
            "packages/infra/leak.py": "from packages.core.users import service\n",
            "packages/core/web.py": "from fastapi import APIRouter\nimport starlette.requests\n",
            "packages/infra/tools.py": "from mcp.server.mcpserver import MCPServer\n",
        },
    )
    assert _found(checker, root) == {
        ("packages/core/bad.py", 1, "packages-imports-apps"),
        ("apps/api/legacy.py", 1, "src-import"),
        ("scripts/old.py", 1, "src-import"),
        ("apps/api/cross.py", 1, "cross-app-import"),
        ("apps/worker/cross.py", 1, "cross-app-import"),
        ("apps/cli.py", 1, "cross-app-import"),
        ("packages/domain/impure.py", 2, "domain-impurity"),
        ("packages/domain/impure.py", 3, "domain-impurity"),
        ("packages/domain/queue.py", 1, "domain-impurity"),
        ("packages/domain/reach.py", 1, "domain-impurity"),
        ("packages/infra/leak.py", 1, "infra-imports-core"),
        ("packages/core/web.py", 1, "packages-imports-front-end"),
        ("packages/core/web.py", 2, "packages-imports-front-end"),
        ("packages/infra/tools.py", 1, "packages-imports-front-end"),
    }


def test_relative_nested_type_checking_and_dynamic_imports_are_resolved(
    checker: ModuleType, tmp_path: Path
) -> None:
    root = _tree(
        tmp_path,
        {
            # packages/domain/strategy/x.py: `..` is packages.domain, `...` is packages.
            "packages/domain/strategy/__init__.py": "",
            "packages/domain/strategy/relative.py": "from ...infra import db\nfrom ... import core\n",
            "packages/domain/strategy/nested.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from redis import Redis
                def load() -> None:
                    import requests
                class Holder:
                    def method(self) -> None:
                        from fastapi import FastAPI
            """,
            "packages/infra/dynamic.py": """
                import importlib
                def load() -> None:
                    importlib.import_module("apps.api.main")
                    __import__("packages.core.users")
            """,
            # In a package's __init__.py, `.` is the package itself.
            "packages/infra/__init__.py": "from ..core import users\n",
            "apps/mcp/__init__.py": "from . import tools\nfrom ..api import routes\n",
        },
    )
    assert _found(checker, root) == {
        ("packages/domain/strategy/relative.py", 1, "domain-impurity"),
        ("packages/domain/strategy/relative.py", 2, "domain-impurity"),
        ("packages/domain/strategy/nested.py", 4, "domain-impurity"),
        ("packages/domain/strategy/nested.py", 6, "domain-impurity"),
        ("packages/domain/strategy/nested.py", 9, "domain-impurity"),
        ("packages/infra/dynamic.py", 4, "infra-imports-core"),
        ("packages/infra/dynamic.py", 5, "infra-imports-core"),
        ("packages/infra/dynamic.py", 4, "packages-imports-apps"),
        ("packages/infra/__init__.py", 1, "infra-imports-core"),
        ("apps/mcp/__init__.py", 2, "cross-app-import"),
    }


def test_allowlist_admits_a_listed_cross_app_import(
    checker: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path, {"apps/api/uses_mcp.py": "from apps.mcp.schemas import Tool\n"})
    assert _found(checker, root) == {("apps/api/uses_mcp.py", 1, "cross-app-import")}
    monkeypatch.setattr(checker, "ALLOWED_CROSS_APP_IMPORTS", frozenset({("api", "apps.mcp.schemas")}))
    assert _found(checker, root) == set()


def test_command_line_prints_path_line_rule_and_exits_1(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"packages/domain/bad.py": "\n\nimport celery\n"})
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(root)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert result.stdout.splitlines()[0].startswith(
        "packages/domain/bad.py:3: domain-impurity: imports celery"
    )

    clean = subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(_tree(tmp_path / "clean", CLEAN))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert clean.returncode == 0 and "import boundaries OK" in clean.stdout


def test_the_repository_itself_respects_the_boundaries() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
