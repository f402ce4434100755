from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from packages.shared_settings.loader import REPO_ROOT, SettingsError, resolve_env_layout
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
        "MCP_CONTEXT_SECRET",
        "API_TRUSTED_PROXIES",
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


# The defaults the settings once shipped: anyone could sign tokens a dev stack accepted.
PUBLISHED_DEFAULTS = {"dev-insecure-secret-key-change-me", "dev-insecure-mcp-secret-change-me"}

_PRINT_SECRETS = (
    "from packages.shared_settings import get_settings; a = get_settings().auth; "
    "print(a.secret_key.get_secret_value(), a.mcp_token_secret.get_secret_value())"
)


def test_dev_secrets_are_generated_once_per_data_folder_and_every_process_agrees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "env").mkdir()
    env_dir = _env_dir(tmp_path / "env", {})
    data_dir = tmp_path / "data"
    env = {key: value for key, value in os.environ.items() if key not in ("SECRET_KEY", "MCP_CONTEXT_SECRET")}
    env.update(MINSY_ENV_PROFILE="dev", MINSY_ENV_DIR=str(env_dir), MINSY_DATA_DIR=str(data_dir))
    env.pop("MINSY_SERVICE", None)
    # Four processes of one stack start at once on an empty data folder (API, MCP, workers, beat).
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _PRINT_SECRETS], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outputs = {process.communicate(timeout=60)[0].strip() for process in processes}
    assert all(process.returncode == 0 for process in processes)
    assert len(outputs) == 1
    secret_key, mcp_secret = outputs.pop().split()
    assert secret_key != mcp_secret and len(secret_key) >= 40 and len(mcp_secret) >= 40
    assert not {secret_key, mcp_secret} & PUBLISHED_DEFAULTS

    secrets_file = data_dir / "secrets" / "dev-secrets.env"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(secrets_file.parent.stat().st_mode) == 0o700
    # A later process on the same folder reads the same values; another data folder has its own.
    same = _settings(env_dir, {"MINSY_DATA_DIR": str(data_dir)}, monkeypatch)
    assert same.auth.secret_key.get_secret_value() == secret_key
    assert same.auth.mcp_token_secret.get_secret_value() == mcp_secret
    other = _settings(env_dir, {"MINSY_DATA_DIR": str(tmp_path / "other")}, monkeypatch)
    assert other.auth.secret_key.get_secret_value() not in (secret_key, *PUBLISHED_DEFAULTS)


def test_explicit_dev_secrets_win_and_placeholders_do_not_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    env_dir = _env_dir(
        tmp_path, {".env.secrets": "SECRET_KEY=9f2c41d7e0b84a65\nMCP_CONTEXT_SECRET=change-me\n"}
    )
    settings = _settings(env_dir, {"MINSY_DATA_DIR": str(data_dir)}, monkeypatch)
    assert settings.auth.secret_key.get_secret_value() == "9f2c41d7e0b84a65"
    # "change-me" (copied from the example file) is no secret: the generated one stands in for it.
    generated = settings.auth.mcp_token_secret.get_secret_value()
    assert generated != "change-me" and len(generated) >= 40
    assert "MCP_CONTEXT_SECRET=" + generated in (data_dir / "secrets" / "dev-secrets.env").read_text()

    from_environment = _settings(
        env_dir, {"MINSY_DATA_DIR": str(data_dir), "MCP_CONTEXT_SECRET": "0c5e7a91d3f24b86"}, monkeypatch
    )
    assert from_environment.auth.mcp_token_secret.get_secret_value() == "0c5e7a91d3f24b86"


def test_prod_never_falls_back_to_generated_dev_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    env_dir = _env_dir(tmp_path, {})
    _settings(env_dir, {"MINSY_DATA_DIR": str(data_dir)}, monkeypatch)
    assert (data_dir / "secrets" / "dev-secrets.env").is_file()
    with pytest.raises(SettingsError, match="SECRET_KEY, MCP_CONTEXT_SECRET"):
        _settings(env_dir, {"MINSY_DATA_DIR": str(data_dir), "MINSY_ENV_PROFILE": "prod"}, monkeypatch)


def test_trusted_proxies_are_addresses_or_networks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_dir = _env_dir(tmp_path, {})
    assert _settings(env_dir, {}, monkeypatch).api.trusted_proxies == []
    settings = _settings(env_dir, {"API_TRUSTED_PROXIES": " 127.0.0.1, ::1,172.18.0.0/16 "}, monkeypatch)
    assert settings.api.trusted_proxies == ["127.0.0.1", "::1", "172.18.0.0/16"]
    with pytest.raises(ValueError, match="API_TRUSTED_PROXIES"):
        _settings(env_dir, {"API_TRUSTED_PROXIES": "caddy"}, monkeypatch)
