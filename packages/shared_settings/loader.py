"""Which env files apply to this process, in which order.

Order (later overrides earlier; the process environment overrides them all):
``env/.env.secrets`` -> ``env/.env.common`` -> ``env/.env.{profile}`` -> ``env/.env.{profile}.{service}``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

ALLOWED_PROFILES: Final = ("dev", "prod")
ALLOWED_SERVICES: Final = ("api", "mcp", "worker_cpu", "worker_io", "beat")
REPO_ROOT: Final = Path(__file__).resolve().parents[2]


class SettingsError(RuntimeError):
    """Configuration is missing or invalid; the message says what to fix."""


@dataclass(frozen=True)
class EnvLayout:
    profile: str
    service: str | None
    env_dir: Path
    files: tuple[Path, ...]  # existing files only, in load order


def resolve_profile(environ: dict[str, str] | os._Environ[str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    raw = environ.get("MINSY_ENV_PROFILE") or environ.get("APP_ENV") or "dev"
    profile = raw.strip().lower()
    if profile not in ALLOWED_PROFILES:
        raise SettingsError(
            f"Unknown env profile {raw!r} (from MINSY_ENV_PROFILE/APP_ENV); allowed values: "
            + ", ".join(ALLOWED_PROFILES)
        )
    return profile


def resolve_service(environ: dict[str, str] | os._Environ[str] | None = None) -> str | None:
    environ = os.environ if environ is None else environ
    raw = environ.get("MINSY_SERVICE")
    if not raw:
        return None
    service = raw.strip().lower()
    if service not in ALLOWED_SERVICES:
        raise SettingsError(
            f"Unknown service {raw!r} (from MINSY_SERVICE); allowed values: " + ", ".join(ALLOWED_SERVICES)
        )
    return service


def resolve_env_layout(
    env_dir: Path | None = None, environ: dict[str, str] | os._Environ[str] | None = None
) -> EnvLayout:
    environ = os.environ if environ is None else environ
    env_dir = env_dir or Path(environ.get("MINSY_ENV_DIR") or REPO_ROOT / "env")
    profile = resolve_profile(environ)
    service = resolve_service(environ)
    for baseline in ALLOWED_PROFILES:
        if not (env_dir / f".env.{baseline}").is_file():
            raise SettingsError(
                f"Required baseline env file {env_dir / f'.env.{baseline}'} is missing; "
                "env/.env.dev and env/.env.prod must both exist (see env/README.md)."
            )
    candidates = [env_dir / ".env.secrets", env_dir / ".env.common", env_dir / f".env.{profile}"]
    if service:
        candidates.append(env_dir / f".env.{profile}.{service}")
    return EnvLayout(
        profile=profile,
        service=service,
        env_dir=env_dir,
        files=tuple(path for path in candidates if path.is_file()),
    )
