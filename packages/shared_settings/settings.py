"""Typed settings, one class per concern, all read through the same env-file layering."""

from __future__ import annotations

import functools
import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from packages.shared_settings.dev_secrets import dev_secrets_file, load_or_create_dev_secrets
from packages.shared_settings.loader import REPO_ROOT, EnvLayout, SettingsError, resolve_env_layout

# Values that mean "nobody set this yet"; prod refuses to start with any of them.
_PLACEHOLDER_MARKERS = ("change-me", "changeme", "placeholder", "dev-insecure", "your-", "xxx")


class _Group(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", env_file_encoding="utf-8", frozen=True)


class RuntimeSettings(_Group):
    profile: Literal["dev", "prod"] = "dev"
    service: str | None = None
    data_dir: Path = Field(default=REPO_ROOT / "var", alias="MINSY_DATA_DIR")
    embedded_services: Literal["auto", "always", "never"] = Field(
        default="auto", alias="MINSY_EMBEDDED_SERVICES"
    )
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    log_json: bool = Field(default=True, alias="LOG_JSON")

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value if value.is_absolute() else (REPO_ROOT / value)


class DatabaseSettings(_Group):
    url_override: str | None = Field(default=None, alias="DATABASE_URL")
    host: str = Field(default="127.0.0.1", alias="POSTGRES_HOST")
    port: int = Field(default=5432, alias="POSTGRES_PORT")
    user: str = Field(default="postgres", alias="POSTGRES_USER")
    password: SecretStr = Field(default=SecretStr(""), alias="POSTGRES_PASSWORD")
    name: str = Field(default="minsy", alias="POSTGRES_DB")
    pool_size: int = Field(default=10, alias="DATABASE_POOL_SIZE")
    echo: bool = Field(default=False, alias="DATABASE_ECHO")

    @property
    def url(self) -> str:
        """SQLAlchemy async URL (asyncpg driver)."""
        if self.url_override:
            return normalise_database_url(self.url_override)
        password = self.password.get_secret_value()
        auth = quote(self.user, safe="") + (":" + quote(password, safe="") if password else "")
        return f"postgresql+asyncpg://{auth}@{self.host}:{self.port}/{self.name}"


class RedisSettings(_Group):
    url_override: str | None = Field(default=None, alias="REDIS_URL")
    host: str = Field(default="127.0.0.1", alias="REDIS_HOST")
    port: int = Field(default=6379, alias="REDIS_PORT")
    password: SecretStr = Field(default=SecretStr(""), alias="REDIS_PASSWORD")
    app_db: int = Field(default=0, alias="REDIS_APP_DB")
    broker_db: int = Field(default=1, alias="REDIS_BROKER_DB")
    result_db: int = Field(default=2, alias="REDIS_RESULT_DB")

    @property
    def base_url(self) -> str:
        if self.url_override:
            base = self.url_override.rstrip("/")
            # Drop a trailing "/<db>" so that each role picks its own database number.
            head, _, tail = base.rpartition("/")
            return head if tail.isdigit() and "://" in head else base
        password = self.password.get_secret_value()
        auth = f":{quote(password, safe='')}@" if password else ""
        return f"redis://{auth}{self.host}:{self.port}"

    def url(self, db: int | None = None) -> str:
        return f"{self.base_url}/{self.app_db if db is None else db}"

    @property
    def app_url(self) -> str:
        return self.url(self.app_db)

    @property
    def broker_url(self) -> str:
        return self.url(self.broker_db)

    @property
    def result_url(self) -> str:
        return self.url(self.result_db)


class AuthSettings(_Group):
    # No default values: the dev profile generates them per data folder (dev_secrets.py), prod
    # refuses to start without real ones.
    secret_key: SecretStr = Field(default=SecretStr(""), alias="SECRET_KEY")
    access_token_minutes: int = Field(default=30, alias="ACCESS_TOKEN_MINUTES")
    refresh_token_days: int = Field(default=14, alias="REFRESH_TOKEN_DAYS")
    mcp_token_secret: SecretStr = Field(default=SecretStr(""), alias="MCP_CONTEXT_SECRET")
    mcp_token_minutes: int = Field(default=15, alias="MCP_TOKEN_MINUTES")
    mcp_token_max_minutes: int = Field(default=24 * 60, alias="MCP_TOKEN_MAX_MINUTES")
    issuer: str = Field(default="minsy", alias="JWT_ISSUER")
    # Attempts per minute, counted separately per client address and per email: login and register
    # (both counters), refresh (client address only).
    attempts_per_minute: int = Field(default=20, ge=1, alias="AUTH_ATTEMPTS_PER_MINUTE")


class ApiSettings(_Group):
    host: str = Field(default="127.0.0.1", alias="API_HOST")
    port: int = Field(default=8000, alias="API_PORT")
    max_body_bytes: int = Field(default=1_048_576, alias="API_MAX_BODY_BYTES")
    upload_max_bytes: int = Field(default=64 * 1_048_576, alias="API_UPLOAD_MAX_BYTES")
    cors_origins: list[str] = Field(default_factory=list, alias="API_CORS_ORIGINS")
    public_url_override: str | None = Field(default=None, alias="API_PUBLIC_URL")
    # Reverse proxies (IP addresses or networks, comma separated) whose X-Forwarded-For and
    # X-Forwarded-Proto headers are believed. Empty: none, the TCP peer is the client.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="API_TRUSTED_PROXIES")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"API_TRUSTED_PROXIES entry {item!r} is not an IP address or network (e.g. 10.0.0.0/8)"
                ) from None
        return value

    @property
    def public_url(self) -> str:
        return self.public_url_override or f"http://{_local_host(self.host)}:{self.port}"


class McpSettings(_Group):
    host: str = Field(default="127.0.0.1", alias="MCP_HOST")
    port: int = Field(default=8110, alias="MCP_PORT")
    public_url_override: str | None = Field(default=None, alias="MCP_PUBLIC_URL")
    # How the API reaches the MCP process for /status (inside compose: http://mcp:8110).
    internal_url_override: str | None = Field(default=None, alias="MCP_INTERNAL_URL")
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1:*", "localhost:*", "[::1]:*"], alias="MCP_ALLOWED_HOSTS"
    )
    allowed_origins: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:*", "http://localhost:*"], alias="MCP_ALLOWED_ORIGINS"
    )

    @property
    def public_url(self) -> str:
        return self.public_url_override or f"http://{_local_host(self.host)}:{self.port}"

    @property
    def internal_url(self) -> str:
        return self.internal_url_override or f"http://{_local_host(self.host)}:{self.port}"

    def domain_url(self, domain: str) -> str:
        return f"{self.public_url.rstrip('/')}/{domain}/mcp"


class CelerySettings(_Group):
    # Above the longest task's hard time limit, so Redis never re-delivers a task that is still running.
    visibility_timeout_s: int = Field(default=4 * 3600, alias="CELERY_VISIBILITY_TIMEOUT_S")
    task_soft_time_limit_s: int = Field(default=3 * 3600, alias="CELERY_TASK_SOFT_TIME_LIMIT_S")
    task_time_limit_s: int = Field(default=3 * 3600 + 300, alias="CELERY_TASK_TIME_LIMIT_S")
    beat_heartbeat_s: float = Field(default=15.0, alias="BEAT_HEARTBEAT_S")
    job_heartbeat_s: float = Field(default=2.0, alias="JOB_HEARTBEAT_S")
    # A running job whose heartbeat is older than this lost its worker: it is re-queued or failed.
    job_stale_after_s: float = Field(default=30.0, alias="JOB_STALE_AFTER_S")
    job_max_attempts: int = Field(default=3, alias="JOB_MAX_ATTEMPTS")
    stale_job_sweep_s: float = Field(default=30.0, alias="STALE_JOB_SWEEP_S")
    # The outbox relay (in beat) publishes what the fast path could not, this often.
    outbox_relay_interval_s: float = Field(default=1.0, gt=0, alias="OUTBOX_RELAY_INTERVAL_S")
    outbox_keep_published_h: float = Field(default=24.0, gt=0, alias="OUTBOX_KEEP_PUBLISHED_H")


class StrategySettings(_Group):
    draft_ttl_s: int = Field(default=7 * 24 * 3600, alias="STRATEGY_DRAFT_TTL_S")
    max_drafts_per_user: int = Field(default=50, alias="STRATEGY_MAX_DRAFTS_PER_USER")


class BacktestSettings(_Group):
    """Per-user caps on backtest jobs and the size of what a job stores."""

    # Bars x symbols one job may simulate; checked on the estimate at submission and on the loaded bars.
    max_bars_per_job: int = Field(default=2_000_000, ge=1, alias="BACKTEST_MAX_BARS_PER_JOB")
    max_symbols: int = Field(default=50, ge=1, alias="BACKTEST_MAX_SYMBOLS")
    # Queued + running jobs one user may have at a time; more answers 429 with Retry-After.
    max_active_jobs_per_user: int = Field(default=4, ge=1, alias="BACKTEST_MAX_ACTIVE_JOBS_PER_USER")
    retry_after_s: int = Field(default=5, ge=1, alias="BACKTEST_RETRY_AFTER_S")
    # Bars kept on each side of a trade's entry and exit for trade snapshots.
    snapshot_context_bars: int = Field(default=20, ge=1, le=500, alias="BACKTEST_SNAPSHOT_CONTEXT_BARS")
    # Values (bars x symbols x series) a result keeps for trade snapshots; trades past it have none.
    snapshot_max_values: int = Field(default=500_000, ge=0, alias="BACKTEST_SNAPSHOT_MAX_VALUES")
    chart_points: int = Field(default=2000, ge=100, le=20_000, alias="BACKTEST_CHART_POINTS")


class OpenAISettings(_Group):
    api_key: SecretStr | None = Field(default=None, alias="OPENAI_API_KEY")
    base_url: str | None = Field(default=None, alias="OPENAI_BASE_URL")
    model: str = Field(default="gpt-5.2", alias="OPENAI_RESPONSE_MODEL")


class ChatPhaseModel(BaseModel):
    """What one conversation phase asks of the model (None: the provider's default)."""

    model: str | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    max_output_tokens: int | None = Field(default=None, ge=16, le=128_000)


class ChatPrice(BaseModel):
    """US dollars per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)


class ChatSettings(_Group):
    """The conversation: which model answers, how tools reach it, limits, grounding, replay buffers."""

    # auto: OpenAI when OPENAI_API_KEY is set, else the offline agent (no network at all).
    provider: Literal["auto", "offline", "openai", "openai_compatible"] = Field(
        default="auto", alias="CHAT_PROVIDER"
    )
    # bridged: the orchestrator calls our MCP servers and offers their tools as functions (no public
    # URL needed); hosted: the model provider calls MCP_SERVER_URL_* itself with a per-session token.
    tool_mode: Literal["bridged", "hosted"] = Field(default="bridged", alias="CHAT_TOOL_MODE")
    # Any OpenAI-compatible server (a local model server...): base URL, model, key, API style.
    compatible_base_url: str | None = Field(default=None, alias="CHAT_COMPATIBLE_BASE_URL")
    compatible_model: str | None = Field(default=None, alias="CHAT_COMPATIBLE_MODEL")
    compatible_api_key: SecretStr | None = Field(default=None, alias="CHAT_COMPATIBLE_API_KEY")
    compatible_api: Literal["responses", "chat_completions"] = Field(
        default="chat_completions", alias="CHAT_COMPATIBLE_API"
    )
    # Per phase: {"strategy": {"model": "...", "reasoning_effort": "medium", "max_output_tokens": 4000}}.
    phase_models: dict[str, ChatPhaseModel] = Field(default_factory=dict, alias="CHAT_PHASE_MODELS")
    # {"model name": {"input": 1.25, "output": 10.0, "cached_input": 0.125}} (USD per 1M tokens);
    # a model without a price reports its tokens and a null cost.
    pricing: dict[str, ChatPrice] = Field(default_factory=dict, alias="CHAT_PRICING")
    # Attempts at a model call that failed before its first event (then the error is reported).
    model_attempts: int = Field(default=3, ge=1, le=10, alias="CHAT_MODEL_ATTEMPTS")
    first_event_timeout_s: float = Field(default=60.0, gt=0, alias="CHAT_FIRST_EVENT_TIMEOUT_S")
    # A whole turn (every model call and tool call) ends by then, reported as an error.
    turn_timeout_s: float = Field(default=300.0, gt=0, alias="CHAT_TURN_TIMEOUT_S")
    max_tool_calls: int = Field(default=24, ge=1, le=200, alias="CHAT_MAX_TOOL_CALLS")
    # Automatic revision rounds of a strategy draft (validate failed -> revise) within one turn.
    max_revision_rounds: int = Field(default=3, ge=0, le=10, alias="CHAT_MAX_REVISION_ROUNDS")
    # Longest wait_for_job may wait for a backtest or stress test.
    job_wait_s: float = Field(default=120.0, gt=0, le=1800, alias="CHAT_JOB_WAIT_S")
    history_messages: int = Field(default=8, ge=0, le=100, alias="CHAT_HISTORY_MESSAGES")
    tool_output_chars: int = Field(default=12_000, ge=500, alias="CHAT_TOOL_OUTPUT_CHARS")
    # mark: a reply stating a figure no tool produced is flagged in `done`; withhold: it is not shown.
    grounding: Literal["mark", "withhold"] = Field(default="mark", alias="CHAT_GROUNDING")
    turns_per_minute: int = Field(default=20, ge=1, alias="CHAT_TURNS_PER_MINUTE")
    daily_token_budget: int = Field(default=2_000_000, ge=1, alias="CHAT_DAILY_TOKEN_BUDGET")
    # Events of a turn stay in Redis this long for reconnecting clients (then the stored copy serves).
    event_ttl_s: int = Field(default=3600, ge=10, alias="CHAT_EVENT_TTL_S")
    heartbeat_s: float = Field(default=10.0, gt=0, le=300, alias="CHAT_HEARTBEAT_S")
    # Prompts and model replies are not logged unless this is on (tokens and secrets never are).
    log_prompts: bool = Field(default=False, alias="CHAT_LOG_PROMPTS")
    mcp_token_minutes: int = Field(default=30, ge=1, le=24 * 60, alias="CHAT_MCP_TOKEN_MINUTES")
    # Hosted-MCP mode: where the model provider reaches each domain (the seed's names), per profile.
    mcp_server_url_strategy_dev: str | None = Field(default=None, alias="MCP_SERVER_URL_STRATEGY_DEV")
    mcp_server_url_backtest_dev: str | None = Field(default=None, alias="MCP_SERVER_URL_BACKTEST_DEV")
    mcp_server_url_market_dev: str | None = Field(default=None, alias="MCP_SERVER_URL_MARKET_DEV")
    mcp_server_url_stress_dev: str | None = Field(default=None, alias="MCP_SERVER_URL_STRESS_DEV")
    mcp_server_url_trading_dev: str | None = Field(default=None, alias="MCP_SERVER_URL_TRADING_DEV")
    mcp_server_url_strategy_prod: str | None = Field(default=None, alias="MCP_SERVER_URL_STRATEGY_PROD")
    mcp_server_url_backtest_prod: str | None = Field(default=None, alias="MCP_SERVER_URL_BACKTEST_PROD")
    mcp_server_url_market_prod: str | None = Field(default=None, alias="MCP_SERVER_URL_MARKET_PROD")
    mcp_server_url_stress_prod: str | None = Field(default=None, alias="MCP_SERVER_URL_STRESS_PROD")
    mcp_server_url_trading_prod: str | None = Field(default=None, alias="MCP_SERVER_URL_TRADING_PROD")

    def hosted_mcp_url(self, domain: str, profile: str) -> str | None:
        """The URL the model provider calls for ``domain`` in hosted-MCP mode (None: not set)."""
        value = getattr(self, f"mcp_server_url_{domain}_{profile}", None)
        return str(value) if value else None


class StressSettings(_Group):
    """Per-user caps on stress tests and how finely their jobs are cut into parts."""

    # Queued + running stress tests one user may have at a time; more answers 429 with Retry-After.
    max_active_jobs_per_user: int = Field(default=2, ge=1, alias="STRESS_MAX_ACTIVE_JOBS_PER_USER")
    retry_after_s: int = Field(default=10, ge=1, alias="STRESS_RETRY_AFTER_S")
    max_trials: int = Field(default=20_000, ge=1, alias="STRESS_MAX_TRIALS")  # Monte Carlo trials
    # Backtests one sensitivity scan or one optimisation (each walk-forward fold's search) may run.
    max_points: int = Field(default=2_000, ge=1, alias="STRESS_MAX_POINTS")
    max_folds: int = Field(default=20, ge=2, alias="STRESS_MAX_FOLDS")
    max_windows: int = Field(default=40, ge=1, alias="STRESS_MAX_WINDOWS")  # crisis windows, named + custom
    # Work per part: parts run side by side on every CPU worker process.
    trials_per_part: int = Field(default=2_500, ge=1, alias="STRESS_TRIALS_PER_PART")
    points_per_part: int = Field(default=25, ge=1, alias="STRESS_POINTS_PER_PART")


class TradingSettings(_Group):
    """Paper trading: confirmations of money-moving actions, per-user caps, the live event stream."""

    # A confirmation token (preview of a money-moving action) can be used this long, once.
    confirmation_ttl_s: int = Field(default=600, ge=10, le=7 * 24 * 3600, alias="TRADING_CONFIRMATION_TTL_S")
    # Unused, unexpired confirmations one user may hold; more answers 429 with Retry-After.
    max_pending_confirmations_per_user: int = Field(
        default=50, ge=1, alias="TRADING_MAX_PENDING_CONFIRMATIONS_PER_USER"
    )
    max_accounts_per_user: int = Field(default=20, ge=1, alias="TRADING_MAX_ACCOUNTS_PER_USER")
    # Deployments that are not stopped, per user (a stopped one keeps its history and counts no more).
    max_deployments_per_user: int = Field(default=20, ge=1, alias="TRADING_MAX_DEPLOYMENTS_PER_USER")
    # Replay clock: simulated seconds per wall second, at most (86,400: a day of bars per second).
    max_replay_speed: float = Field(default=86_400.0, ge=1, alias="TRADING_MAX_REPLAY_SPEED")
    # The SSE stream writes a comment this often when no event comes, so proxies keep it open; at
    # the same beat it looks in the database for events whose publication is late.
    stream_heartbeat_s: float = Field(default=15.0, gt=0, le=300, alias="TRADING_STREAM_HEARTBEAT_S")
    # Events a stream reads from the database per query while it catches up (its replay buffer).
    stream_buffer_events: int = Field(default=500, ge=1, le=10_000, alias="TRADING_STREAM_BUFFER_EVENTS")
    pnl_chart_points: int = Field(default=1000, ge=10, le=20_000, alias="TRADING_PNL_CHART_POINTS")
    # The runtime (packages/core/trading/scheduler.py): beat's tick finds the bars that closed and
    # sends each deployment one cycle task for at most this many of them (the catch-up rate).
    tick_interval_s: float = Field(default=1.0, gt=0, le=60, alias="TRADING_TICK_INTERVAL_S")
    max_bars_per_tick: int = Field(default=20, ge=1, le=10_000, alias="TRADING_MAX_BARS_PER_TICK")
    # A cycle task holds its deployment's Redis lease this long (renewed after every bar): a worker
    # killed mid-cycle blocks its deployment at most this long. A task finding the lease held retries
    # after lease_retry_s.
    cycle_lease_s: float = Field(default=15.0, gt=0, le=3600, alias="TRADING_CYCLE_LEASE_S")
    lease_retry_s: float = Field(default=1.0, gt=0, le=60, alias="TRADING_LEASE_RETRY_S")
    # How often a worker looks again which dataset serves a deployment's symbol (a new import, a
    # deleted one); bars of an unchanged dataset stay in its memory.
    data_revalidate_s: float = Field(default=5.0, gt=0, le=3600, alias="TRADING_DATA_REVALIDATE_S")
    # Bars x symbols one cycle may evaluate (its window); readiness refuses a deployment above it
    # (e.g. a daily indicator on 1-minute bars would read months of minutes every minute).
    max_window_cells: int = Field(default=250_000, ge=100, alias="TRADING_MAX_WINDOW_CELLS")


class ProviderSettings(_Group):
    alpaca_api_key: SecretStr | None = Field(default=None, alias="ALPACA_API_KEY")
    alpaca_api_secret: SecretStr | None = Field(default=None, alias="ALPACA_API_SECRET")
    network_enabled: bool = Field(default=False, alias="MARKET_DATA_NETWORK_ENABLED")


class MarketDataArchive(BaseModel):
    """One ``.7z`` archive for the cold start: a local path or an http(s) URL (URLs need ``sha256``)."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    location: str = Field(min_length=1, max_length=2000)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")


class MarketDataSettings(_Group):
    """The market-data store, its cold start, realtime refresh, providers and request caps."""

    data_dir: Path = Field(default=REPO_ROOT / "var", alias="MINSY_DATA_DIR")
    # JSON list of {"name", "location", "sha256"}; the packaged demo archive is added unless disabled.
    archives: list[MarketDataArchive] = Field(default_factory=list, alias="MARKET_DATA_ARCHIVES")
    include_demo_archive: bool = Field(default=True, alias="MARKET_DATA_DEMO_ARCHIVE")
    cold_start_on_worker_ready: bool = Field(default=True, alias="MARKET_DATA_COLD_START_ON_WORKER_READY")
    download_timeout_s: float = Field(default=120.0, alias="MARKET_DATA_DOWNLOAD_TIMEOUT_S")
    # "market:SYMBOL:timeframe" entries, comma separated; refreshed and published on every beat tick.
    realtime_symbols: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["us_stocks:AAPL:1d", "us_stocks:SPX:1d", "forex:EURUSD:1h"],
        alias="MARKET_DATA_REALTIME_SYMBOLS",
    )
    realtime_interval_s: float = Field(default=5.0, gt=0, alias="MARKET_DATA_REALTIME_INTERVAL_S")
    # Offline replay: simulated seconds per wall second (720: one hourly bar every 5 s).
    replay_speed: float = Field(default=720.0, gt=0, alias="MARKET_DATA_REPLAY_SPEED")
    # The replay starts this many bars into the history, so indicators have data from the first tick.
    replay_warmup_bars: int = Field(default=300, ge=0, alias="MARKET_DATA_REPLAY_WARMUP_BARS")
    quote_ttl_s: int = Field(default=3600, ge=1, alias="MARKET_DATA_QUOTE_TTL_S")
    ccxt_exchange: str = Field(default="binance", alias="MARKET_DATA_CCXT_EXCHANGE")
    alpaca_feed: str = Field(default="iex", alias="MARKET_DATA_ALPACA_FEED")
    yahoo_base_url: str = Field(
        default="https://query1.finance.yahoo.com", alias="MARKET_DATA_YAHOO_BASE_URL"
    )
    # "module:callable" returning a BarProvider (or None for the default) for
    # (provider name, market, symbol, timeframe): plugs in other providers, e.g. recorded responses.
    provider_factory: str | None = Field(default=None, alias="MARKET_DATA_PROVIDER_FACTORY")
    max_page_bars: int = Field(default=5000, ge=1, alias="MARKET_DATA_MAX_PAGE_BARS")
    # A request's range may span at most this many bars of its timeframe (bars, gaps, sync jobs).
    max_range_bars: int = Field(default=2_000_000, ge=1, alias="MARKET_DATA_MAX_RANGE_BARS")
    max_sync_chunks: int = Field(default=500, ge=1, alias="MARKET_DATA_MAX_SYNC_CHUNKS")
    resample_cache_mb: int = Field(default=256, ge=0, alias="MARKET_DATA_RESAMPLE_CACHE_MB")
    # Imported files with more columns are refused from their header, before parsing (which costs
    # time per column); a bar file needs six.
    import_max_columns: int = Field(default=64, ge=6, alias="MARKET_DATA_IMPORT_MAX_COLUMNS")

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value if value.is_absolute() else (REPO_ROOT / value)

    @field_validator("realtime_symbols", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("realtime_symbols")
    @classmethod
    def _check_symbols(cls, value: list[str]) -> list[str]:
        for item in value:
            if item.count(":") != 2 or not all(item.split(":")):
                raise ValueError(f"realtime symbol {item!r} is not 'market:SYMBOL:timeframe'")
        return value

    @property
    def root(self) -> Path:
        return self.data_dir / "market_data"

    @property
    def store_dir(self) -> Path:
        # The cold start keeps its store in "<root>/store"; everything else reads the same folder.
        return self.root / "store"


_GROUPS: dict[str, type[_Group]] = {
    "runtime": RuntimeSettings,
    "database": DatabaseSettings,
    "redis": RedisSettings,
    "auth": AuthSettings,
    "api": ApiSettings,
    "mcp": McpSettings,
    "celery": CelerySettings,
    "backtests": BacktestSettings,
    "stress": StressSettings,
    "strategies": StrategySettings,
    "trading": TradingSettings,
    "openai": OpenAISettings,
    "chat": ChatSettings,
    "providers": ProviderSettings,
    "market_data": MarketDataSettings,
}

# Signing secrets: (group, field, env name). Prod requires real values; dev generates missing ones.
_REQUIRED_SECRETS = (
    ("auth", "secret_key", "SECRET_KEY"),
    ("auth", "mcp_token_secret", "MCP_CONTEXT_SECRET"),
)


def _local_host(bind_host: str) -> str:
    """The address to reach a server bound to ``bind_host`` from this machine."""
    return "127.0.0.1" if bind_host in ("0.0.0.0", "::", "") else bind_host


def normalise_database_url(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def _is_placeholder(value: str) -> bool:
    lowered = value.strip().lower()
    return not lowered or any(marker in lowered for marker in _PLACEHOLDER_MARKERS)


class Settings:
    """All settings groups of one process, loaded from the same env layout."""

    runtime: RuntimeSettings
    database: DatabaseSettings
    redis: RedisSettings
    auth: AuthSettings
    api: ApiSettings
    mcp: McpSettings
    celery: CelerySettings
    backtests: BacktestSettings
    stress: StressSettings
    strategies: StrategySettings
    trading: TradingSettings
    openai: OpenAISettings
    chat: ChatSettings
    providers: ProviderSettings
    market_data: MarketDataSettings

    def __init__(self, layout: EnvLayout) -> None:
        self.layout = layout
        env_files: Any = layout.files or None
        for name, group in _GROUPS.items():
            overrides: dict[str, Any] = {}
            if group is RuntimeSettings:
                overrides = {"profile": layout.profile, "service": layout.service}
            setattr(self, name, group(_env_file=env_files, **overrides))
        if layout.profile == "prod":
            self._refuse_placeholder_secrets()
        else:
            self._fill_in_dev_secrets()

    def _unset_secrets(self) -> list[tuple[str, str, str]]:
        return [
            (group, field, env_name)
            for group, field, env_name in _REQUIRED_SECRETS
            if _is_placeholder(getattr(getattr(self, group), field).get_secret_value())
        ]

    def _fill_in_dev_secrets(self) -> None:
        """Missing or placeholder secrets become the random ones of this data folder."""
        unset = self._unset_secrets()
        if not unset:
            return
        try:
            generated = load_or_create_dev_secrets(self.runtime.data_dir, [env for _, _, env in unset])
        except OSError as error:
            raise SettingsError(
                f"Cannot keep the generated dev secrets in {dev_secrets_file(self.runtime.data_dir)} "
                f"({error}); make MINSY_DATA_DIR writable or set "
                + ", ".join(env for _, _, env in unset)
                + " in env/.env.secrets."
            ) from error
        for group, field, env_name in unset:
            updated = getattr(self, group).model_copy(update={field: SecretStr(generated[env_name])})
            setattr(self, group, updated)

    def _refuse_placeholder_secrets(self) -> None:
        bad = [env_name for _, _, env_name in self._unset_secrets()]
        if bad:
            raise SettingsError(
                "Profile 'prod' refuses missing or placeholder secrets: "
                + ", ".join(bad)
                + " (set them in env/.env.secrets; see env/.env.secrets.example)."
            )


@functools.cache
def get_settings() -> Settings:
    return Settings(resolve_env_layout())


def reload_settings() -> Settings:
    get_settings.cache_clear()
    return get_settings()


__all__ = ["Settings", "SettingsError", "get_settings", "reload_settings"]
