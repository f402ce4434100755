from __future__ import annotations

from pathlib import Path

import pytest

from packages.shared_settings.loader import SettingsError, resolve_env_layout
from packages.shared_settings.settings import Settings


def _env_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, content in {".env.dev": "", ".env.prod": "", **files}.items():
        (tmp_path / name).write_text(content)
    return tmp_path


def _settings(env_dir: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in (
        "DATABASE_URL",
        "REDIS_URL",
        "POSTGRES_HOST",
        "POSTGRES_PORT",
        "POSTGRES_DB",
        "API_PORT",
        "SECRET_KEY",
    ):
        monkeypatch.delenv(key, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    return Settings(resolve_env_layout(env_dir, environ))


def test_later_files_override_earlier_and_process_env_overrides_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_dir = _env_dir(
        tmp_path,
        {
            ".env.secrets": "POSTGRES_DB=from_secrets\nAPI_PORT=1001\nPOSTGRES_HOST=secrets-host\n",
            ".env.common": "POSTGRES_DB=from_common\nAPI_PORT=1002\n",
            ".env.dev": "API_PORT=1003\nPOSTGRES_PORT=6000\n",
            ".env.dev.api": "API_PORT=1004\n",
        },
    )
    settings = _settings(env_dir, {"MINSY_SERVICE": "api", "POSTGRES_PORT": "7000"}, monkeypatch)
    assert settings.layout.files == tuple(
        env_dir / n for n in (".env.secrets", ".env.common", ".env.dev", ".env.dev.api")
    )
    assert settings.api.port == 1004  # service file wins over profile, common and secrets
    assert settings.database.name == "from_common"
    assert settings.database.host == "secrets-host"
    assert settings.database.port == 7000  # process environment wins over every file
    assert settings.database.url == "postgresql+asyncpg://postgres@secrets-host:7000/from_common"


def test_service_file_of_another_service_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_dir = _env_dir(tmp_path, {".env.dev": "API_PORT=1003\n", ".env.dev.mcp": "API_PORT=9999\n"})
    assert _settings(env_dir, {"MINSY_SERVICE": "api"}, monkeypatch).api.port == 1003


@pytest.mark.parametrize("variable", ["MINSY_ENV_PROFILE", "APP_ENV"])
def test_unknown_profile_names_the_allowed_values(tmp_path: Path, variable: str) -> None:
    with pytest.raises(SettingsError, match="allowed values: dev, prod"):
        resolve_env_layout(_env_dir(tmp_path, {}), {variable: "staging"})


def test_profile_defaults_to_dev_and_app_env_is_honoured(tmp_path: Path) -> None:
    env_dir = _env_dir(tmp_path, {})
    assert resolve_env_layout(env_dir, {}).profile == "dev"
    assert resolve_env_layout(env_dir, {"APP_ENV": "prod"}).profile == "prod"
    assert resolve_env_layout(env_dir, {"MINSY_ENV_PROFILE": "dev", "APP_ENV": "prod"}).profile == "dev"


def test_unknown_service_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="api, mcp, worker_cpu, worker_io, beat"):
        resolve_env_layout(_env_dir(tmp_path, {}), {"MINSY_SERVICE": "frontend"})


@pytest.mark.parametrize("missing", [".env.dev", ".env.prod"])
def test_missing_baseline_file_is_a_clear_error(tmp_path: Path, missing: str) -> None:
    env_dir = _env_dir(tmp_path, {})
    (env_dir / missing).unlink()
    with pytest.raises(SettingsError, match=f"{missing} is missing"):
        resolve_env_layout(env_dir, {})


def test_prod_refuses_placeholder_and_missing_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_dir = _env_dir(tmp_path, {".env.secrets": "SECRET_KEY=change-me\n"})
    monkeypatch.delenv("MCP_CONTEXT_SECRET", raising=False)
    with pytest.raises(SettingsError, match="SECRET_KEY, MCP_CONTEXT_SECRET"):
        _settings(env_dir, {"MINSY_ENV_PROFILE": "prod"}, monkeypatch)


def test_prod_accepts_real_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_dir = _env_dir(
        tmp_path, {".env.secrets": "SECRET_KEY=5b1f0e0d9c2a4e8f\nMCP_CONTEXT_SECRET=8e6a1c3b7d2f4a90\n"}
    )
    monkeypatch.delenv("MCP_CONTEXT_SECRET", raising=False)
    settings = _settings(env_dir, {"MINSY_ENV_PROFILE": "prod"}, monkeypatch)
    assert settings.runtime.profile == "prod"
    assert settings.auth.secret_key.get_secret_value() == "5b1f0e0d9c2a4e8f"


def test_redis_roles_use_separate_databases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_APP_DB", raising=False)
    monkeypatch.delenv("REDIS_BROKER_DB", raising=False)
    monkeypatch.delenv("REDIS_RESULT_DB", raising=False)
    settings = _settings(_env_dir(tmp_path, {}), {"REDIS_URL": "redis://cache:6390/5"}, monkeypatch)
    assert (settings.redis.app_url, settings.redis.broker_url, settings.redis.result_url) == (
        "redis://cache:6390/0",
        "redis://cache:6390/1",
        "redis://cache:6390/2",
    )


def test_repository_env_files_are_complete() -> None:
    env_dir = Path(__file__).resolve().parents[3] / "env"
    example = (env_dir / ".env.secrets.example").read_text()
    for secret in (
        "SECRET_KEY",
        "MCP_CONTEXT_SECRET",
        "POSTGRES_PASSWORD",
        "REDIS_PASSWORD",
        "OPENAI_API_KEY",
    ):
        assert f"\n{secret}=" in "\n" + example
    assert (env_dir / ".env.dev").is_file() and (env_dir / ".env.prod").is_file()
