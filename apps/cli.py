"""``minsy``: run the whole Minsy stack, or one piece of it, from one command.

    minsy up                  PostgreSQL + Redis (configured or embedded), migrations, MCP, API, workers, beat
    minsy infra [--detach]    just PostgreSQL + Redis; prints the URLs and keeps them running
    minsy stop                stop embedded servers left running in the data folder
    minsy migrate             alembic upgrade head (creating the database if missing)
    minsy api | mcp | beat    one service (with PostgreSQL + Redis resolved the same way)
    minsy serve api|mcp       exec the API or MCP server alone, on the configured servers (containers)
    minsy worker --kind cpu|io
    minsy status              GET /api/v1/status, pretty-printed
    minsy market-data ensure|status|import FILE ...
                              load the market-data archives, show their state, import a CSV/Parquet file
    minsy probe URL           exit 0 when URL answers (used by container health checks)
    minsy trading kill-switch --global on|off|status [--reason ...] [--flatten]
                              the operators' global kill switch for every paper deployment

This launcher never imports an app: services run as subprocesses (``python -m uvicorn|celery``, the same
interpreter and virtualenv) addressed by module path. Each child gets DATABASE_URL, REDIS_URL and
MINSY_SERVICE through its environment, which overrides every env file. Subcommands live in a registry:
decorate a ``(args) -> int`` function with ``@command(...)`` to add one.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from packages.infra.embedded import ResolvedService
    from packages.shared_settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
LAUNCHER_NAME = "minsy"


# ==================================================================================================
# Output: one line per event, each prefixed with the service it came from
# ==================================================================================================
_ANSI_COLOURS = ("36", "32", "35", "33", "34", "96", "92", "95")
_ANSI_RESET = "\033[0m"


def colour_enabled(stream: IO[str]) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return stream.isatty()


class LogPrefixer:
    """Writes ``name | line`` with names padded to one width and, on a terminal, one colour per name."""

    def __init__(self, out: TextIO, *, colour: bool, names: tuple[str, ...] = ()) -> None:
        self._out = out
        self._colour = colour
        self._lock = threading.Lock()
        self._width = max((len(name) for name in (LAUNCHER_NAME, *names)), default=0)
        self._palette = itertools.cycle(_ANSI_COLOURS)
        self._colours: dict[str, str] = {LAUNCHER_NAME: "1"}

    def prefix(self, name: str) -> str:
        label = f"{name:<{self._width}} |"
        if not self._colour:
            return label
        code = self._colours.setdefault(name, next(self._palette))
        return f"\033[{code}m{label}{_ANSI_RESET}"

    def line(self, name: str, text: str) -> None:
        with self._lock:
            self._out.write(f"{self.prefix(name)} {text}\n")
            self._out.flush()

    def note(self, text: str) -> None:
        """A message from the launcher itself."""
        self.line(LAUNCHER_NAME, text)


# ==================================================================================================
# Supervisor: start children in order, wait until each is ready, watch them, stop them all cleanly
# ==================================================================================================
@dataclass(frozen=True)
class ServiceSpec:
    name: str
    argv: list[str]
    env: dict[str, str]
    ready: Callable[[], bool] | None = None
    ready_label: str = ""
    ready_timeout_s: float = 120.0


class StartupAborted(RuntimeError):
    """Startup cannot go on: a stop was requested, a child died, or a child never became ready."""


@dataclass
class _Child:
    spec: ServiceSpec
    process: subprocess.Popen[bytes]
    pump: threading.Thread


@dataclass
class Supervisor:
    prefixer: LogPrefixer
    stop_timeout_s: float = 20.0
    poll_interval_s: float = 0.2
    progress_every_s: float = 5.0
    stop_requested: threading.Event = field(default_factory=threading.Event)
    force_requested: threading.Event = field(default_factory=threading.Event)
    children: list[_Child] = field(default_factory=list)
    _first_signal_at: float | None = None

    # --- signals ---------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        now = time.monotonic()
        if self._first_signal_at is None:
            self._first_signal_at = now
            self.prefixer.note(f"{signal.Signals(signum).name} received: stopping (again to force)")
            self.stop_requested.set()
        elif now - self._first_signal_at > 1.0:
            # A terminal's Ctrl-C reaches both `uv run` and us at once; only a later one means "force".
            self.prefixer.note("second signal: killing what is left")
            self.force_requested.set()

    # --- children --------------------------------------------------------------------------------
    def start(self, spec: ServiceSpec) -> _Child:
        process = subprocess.Popen(
            spec.argv,
            env=spec.env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Own session: a terminal Ctrl-C reaches only the launcher, which stops children in order.
            start_new_session=True,
        )
        pump = threading.Thread(target=self._pump, args=(spec.name, process), daemon=True)
        pump.start()
        child = _Child(spec=spec, process=process, pump=pump)
        self.children.append(child)
        self.prefixer.note(f"started {spec.name} (pid {process.pid})")
        return child

    def _pump(self, name: str, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            self.prefixer.line(name, raw.decode(errors="replace").rstrip("\r\n"))
        process.stdout.close()

    def wait_ready(self, child: _Child) -> None:
        spec = child.spec
        if spec.ready is None:
            return
        started = time.monotonic()
        next_progress = started + self.progress_every_s
        self.prefixer.note(f"waiting for {spec.name} ({spec.ready_label})")
        while True:
            if self.stop_requested.is_set():
                raise StartupAborted("stop requested")
            code = child.process.poll()
            if code is not None:
                child.pump.join(timeout=2)
                raise StartupAborted(f"{spec.name} exited with code {code} before it was ready")
            if spec.ready():
                self.prefixer.note(f"{spec.name} is ready ({time.monotonic() - started:.1f} s)")
                return
            now = time.monotonic()
            if now - started > spec.ready_timeout_s:
                raise StartupAborted(f"{spec.name} was not ready after {spec.ready_timeout_s:.0f} s")
            if now >= next_progress:
                self.prefixer.note(f"still waiting for {spec.name}... {now - started:.0f} s")
                next_progress = now + self.progress_every_s
            self.stop_requested.wait(self.poll_interval_s)

    def run_to_completion(self, spec: ServiceSpec) -> int:
        """Run a one-shot child (e.g. migrations) under the same prefixing and stop handling."""
        child = self.start(spec)
        while child.process.poll() is None:
            if self.stop_requested.wait(self.poll_interval_s):
                raise StartupAborted("stop requested")
        child.pump.join(timeout=2)
        self.children.remove(child)
        return child.process.returncode

    def watch(self) -> int:
        """Block until a stop is requested (0) or a child exits on its own (1)."""
        while not self.stop_requested.wait(self.poll_interval_s):
            for child in self.children:
                code = child.process.poll()
                if code is not None:
                    child.pump.join(timeout=2)
                    self.prefixer.note(
                        f"{child.spec.name} exited unexpectedly with code {code}: shutting down"
                    )
                    return 1
        return 0

    def shutdown(self) -> None:
        """TERM every child (latest first), wait up to ``stop_timeout_s``, then KILL what is left."""
        alive = [child for child in reversed(self.children) if child.process.poll() is None]
        for child in alive:
            self.prefixer.note(f"stopping {child.spec.name} (pid {child.process.pid})")
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        while any(child.process.poll() is None for child in alive):
            if self.force_requested.is_set() or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        for child in self.children:
            if child.process.poll() is None:
                self.prefixer.note(f"{child.spec.name} did not stop in time: killing it")
            # Also catches grandchildren (e.g. a worker's pool processes) left in the child's session.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()
            child.pump.join(timeout=2)
        if self.children:
            self.prefixer.note("all services stopped")
        self.children.clear()


# ==================================================================================================
# Settings, infrastructure and service definitions
# ==================================================================================================
def load_settings(service: str | None = None) -> Settings:
    """Settings as the given service would see them (its env files included)."""
    from packages.shared_settings import Settings, resolve_env_layout

    environ = dict(os.environ)
    if service:
        environ["MINSY_SERVICE"] = service
    return Settings(resolve_env_layout(environ=environ))


def http_ok(url: str, *, any_status: bool = False, timeout: float = 2.0) -> bool:
    """True when ``url`` answers (``any_status``: with any HTTP status; otherwise 2xx)."""
    import httpx

    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError:
        return False
    return any_status or response.is_success


def _connect_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


@dataclass
class Infrastructure:
    postgres: ResolvedService
    redis: ResolvedService

    def release(self, prefixer: LogPrefixer) -> None:
        for service in (self.redis, self.postgres):
            if service.release():
                prefixer.note(f"stopped embedded {service.kind}")


def resolve_infrastructure(
    settings: Settings, prefixer: LogPrefixer, *, redis: bool = True
) -> Infrastructure:
    """The configured PostgreSQL/Redis, or embedded ones, per MINSY_EMBEDDED_SERVICES; creates the database."""
    from packages.infra.embedded import ResolvedService, ensure_database, resolve_postgres, resolve_redis

    data_dir = settings.runtime.data_dir
    mode = settings.runtime.embedded_services
    configured = ResolvedService("postgres", settings.database.url, embedded=False).display_url
    prefixer.note(f"PostgreSQL: looking for {configured} (MINSY_EMBEDDED_SERVICES={mode})")
    started = time.monotonic()
    postgres = resolve_postgres(settings.database.url, data_dir=data_dir, mode=mode)
    prefixer.note(_describe(postgres, data_dir, time.monotonic() - started))
    redis_service = ResolvedService("redis", settings.redis.base_url, embedded=False)
    try:
        if ensure_database(postgres.url):
            prefixer.note("PostgreSQL: created the database")
        if redis:
            prefixer.note(f"Redis: looking for {redis_service.display_url}")
            started = time.monotonic()
            redis_service = resolve_redis(settings.redis.base_url, data_dir=data_dir, mode=mode)
            prefixer.note(_describe(redis_service, data_dir, time.monotonic() - started))
    except BaseException:
        postgres.release()
        raise
    return Infrastructure(postgres=postgres, redis=redis_service)


def _describe(service: ResolvedService, data_dir: Path, seconds: float) -> str:
    name = {"postgres": "PostgreSQL", "redis": "Redis"}[service.kind]
    if not service.embedded:
        return f"{name}: using the configured server {service.display_url}"
    verb = "started" if service.started_here else "reusing running"
    return f"{name}: {verb} embedded server {service.display_url} (data in {data_dir / service.kind}, {seconds:.1f} s)"


def child_environment(settings: Settings, infra: Infrastructure, service: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=infra.postgres.url,
        REDIS_URL=infra.redis.url,
        MINSY_SERVICE=service,
        MINSY_ENV_PROFILE=settings.runtime.profile,
        MINSY_DATA_DIR=str(settings.runtime.data_dir),
        # The launcher already chose the servers; a child must never start its own.
        MINSY_EMBEDDED_SERVICES="never",
        PYTHONUNBUFFERED="1",
    )
    return env


def uvicorn_argv(service: str, settings: Settings) -> list[str]:
    """The server command of ``api`` or ``mcp``: the same for `minsy up`, `minsy api|mcp` and `minsy serve`."""
    app, group = (
        ("apps.api.main:app", settings.api) if service == "api" else ("apps.mcp.main:app", settings.mcp)
    )
    proxies = settings.api.trusted_proxies
    return [
        sys.executable, "-m", "uvicorn", app,
        "--host", group.host, "--port", str(group.port),
        "--log-level", settings.runtime.log_level.lower(),
        # Open SSE streams would otherwise hold a shutdown until the launcher's KILL.
        "--timeout-graceful-shutdown", "10",
        # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise; anyone reaching the
        # port from this machine could then pick the client address the rate limits count by.
        *(["--proxy-headers", "--forwarded-allow-ips", ",".join(proxies)] if proxies else ["--no-proxy-headers"]),
    ]  # fmt: skip


def mcp_spec(infra: Infrastructure) -> ServiceSpec:
    from packages.shared_settings import MCP_DOMAINS

    settings = load_settings("mcp")
    probe = f"http://{_connect_host(settings.mcp.host)}:{settings.mcp.port}/{MCP_DOMAINS[0]}/mcp"
    return ServiceSpec(
        name="mcp",
        argv=uvicorn_argv("mcp", settings),
        env=child_environment(settings, infra, "mcp"),
        # Any HTTP answer (a bare GET gets 4xx from an MCP endpoint) means the server is serving.
        ready=lambda: http_ok(probe, any_status=True),
        ready_label=probe,
    )


def api_spec(infra: Infrastructure) -> ServiceSpec:
    settings = load_settings("api")
    probe = f"http://{_connect_host(settings.api.host)}:{settings.api.port}/api/v1/health"
    return ServiceSpec(
        name="api",
        argv=uvicorn_argv("api", settings),
        env=child_environment(settings, infra, "api"),
        ready=lambda: http_ok(probe),
        ready_label=probe,
    )


def worker_spec(infra: Infrastructure, kind: str) -> ServiceSpec:
    from packages.infra.allocator import with_allocator_tuning
    from packages.infra.queue.queues import WORKER_KINDS

    settings = load_settings(f"worker_{kind}")
    common = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "apps.worker.main",
        "worker",
        "--loglevel",
        settings.runtime.log_level,
    ]
    if kind == "cpu":
        options = ["-Q", ",".join(WORKER_KINDS["cpu"]), "-n", "cpu@%h", "--prefetch-multiplier", "1", "--concurrency", "2", "--pool", "prefork"]  # fmt: skip
    else:
        options = ["-Q", ",".join(WORKER_KINDS["io"]), "-n", "io@%h", "--concurrency", "4"]
    env = child_environment(settings, infra, f"worker_{kind}")
    return ServiceSpec(
        name=f"worker-{kind}",
        argv=common + options,
        env=with_allocator_tuning(env) if kind == "cpu" else env,
    )


def beat_spec(infra: Infrastructure) -> ServiceSpec:
    settings = load_settings("beat")
    beat_dir = settings.runtime.data_dir / "beat"
    beat_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-m", "celery", "-A", "apps.beat.main", "beat",
        "-s", str(beat_dir / "schedule"), "--pidfile", str(beat_dir / "beat.pid"),
        "--loglevel", settings.runtime.log_level,
    ]  # fmt: skip
    return ServiceSpec(name="beat", argv=argv, env=child_environment(settings, infra, "beat"))


def migrate_spec(settings: Settings, infra: Infrastructure) -> ServiceSpec:
    return ServiceSpec(
        name="migrate",
        argv=[sys.executable, "-m", "apps.cli", "migrate"],
        env=child_environment(settings, infra, "api"),
    )


# ==================================================================================================
# Subcommand registry
# ==================================================================================================
Handler = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    handler: Handler
    arguments: Callable[[argparse.ArgumentParser], None] | None = None


COMMANDS: dict[str, Command] = {}


def command(
    name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None] | None = None
) -> Callable[[Handler], Handler]:
    """Register ``handler`` as ``minsy <name>``; ``arguments`` adds its options to its parser."""

    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(name=name, help=help, handler=handler, arguments=arguments)
        return handler

    return register


def _prefixer(*names: str) -> LogPrefixer:
    return LogPrefixer(sys.stdout, colour=colour_enabled(sys.stdout), names=names)


def run_supervised(
    supervisor: Supervisor, specs: list[ServiceSpec], on_ready: Callable[[], None] | None = None
) -> int:
    """Start ``specs`` in order, each once the previous is ready; watch them; always stop them all.

    Returns 0 after a requested stop, 1 when a service fails to start or exits on its own.
    """
    try:
        for spec in specs:
            supervisor.wait_ready(supervisor.start(spec))
        if on_ready is not None:
            on_ready()
        return supervisor.watch()
    except StartupAborted as reason:
        if supervisor.stop_requested.is_set():
            return 0
        supervisor.prefixer.note(f"startup failed: {reason}")
        return 1
    finally:
        supervisor.shutdown()


def _run_services(
    specs: Callable[[Infrastructure], list[ServiceSpec]], *, migrate: bool, banner: bool
) -> int:
    settings = load_settings()
    prefixer = _prefixer("migrate", "worker-cpu", "worker-io")
    supervisor = Supervisor(prefixer)
    supervisor.install_signal_handlers()
    infra: Infrastructure | None = None
    try:
        infra = resolve_infrastructure(settings, prefixer)
        if supervisor.stop_requested.is_set():
            return 0
        if migrate:
            prefixer.note("applying database migrations (alembic upgrade head)")
            try:
                code = supervisor.run_to_completion(migrate_spec(settings, infra))
            except StartupAborted:
                return 0
            if code != 0:
                prefixer.note(f"migrations failed with code {code}")
                return 1
        resolved = infra
        on_ready = (lambda: _print_banner(prefixer, settings, resolved)) if banner else None
        return run_supervised(supervisor, specs(infra), on_ready)
    finally:
        supervisor.shutdown()
        if infra is not None:
            infra.release(prefixer)


def _print_banner(prefixer: LogPrefixer, settings: Settings, infra: Infrastructure) -> None:
    from packages.shared_settings import MCP_DOMAINS

    api = f"http://{_connect_host(settings.api.host)}:{settings.api.port}"
    mcp = f"http://{_connect_host(settings.mcp.host)}:{settings.mcp.port}"
    rows = [
        ("API", api),
        ("API docs", f"{api}/api/v1/docs"),
        ("Health", f"{api}/api/v1/health"),
        ("Status", f"{api}/api/v1/status"),
        *((f"MCP {domain}", f"{mcp}/{domain}/mcp") for domain in MCP_DOMAINS),
        ("PostgreSQL", infra.postgres.display_url + ("  (embedded)" if infra.postgres.embedded else "")),
        ("Redis", infra.redis.display_url + ("  (embedded)" if infra.redis.embedded else "")),
    ]
    lines = [
        f"Minsy is up (profile {settings.runtime.profile})",
        *(f"  {label:<13}{value}" for label, value in rows),
        "Press Ctrl-C to stop.",
    ]
    for line in lines:
        prefixer.note(line)


def _ports_in_use() -> list[str]:
    from packages.infra.embedded import tcp_port_open

    busy = []
    for service in ("mcp", "api"):
        settings = load_settings(service)
        group = settings.mcp if service == "mcp" else settings.api
        if tcp_port_open(_connect_host(group.host), group.port, timeout=0.5):
            busy.append(f"{service} port {group.port}")
    return busy


@command("up", "start everything: PostgreSQL, Redis, migrations, MCP, API, CPU and IO workers, beat")
def _up(_args: argparse.Namespace) -> int:
    busy = _ports_in_use()
    if busy:
        print(f"minsy: already in use: {', '.join(busy)} (is another `minsy up` running?)", file=sys.stderr)
        return 2

    def specs(infra: Infrastructure) -> list[ServiceSpec]:
        # The seed's health order: MCP before API (the API calls MCP), workers and beat last.
        return [
            mcp_spec(infra),
            api_spec(infra),
            worker_spec(infra, "cpu"),
            worker_spec(infra, "io"),
            beat_spec(infra),
        ]

    return _run_services(specs, migrate=True, banner=True)


@command("api", "run the API (uvicorn apps.api.main:app)")
def _api(_args: argparse.Namespace) -> int:
    return _run_services(lambda infra: [api_spec(infra)], migrate=False, banner=False)


@command("mcp", "run the MCP server (five domains on one port)")
def _mcp(_args: argparse.Namespace) -> int:
    return _run_services(lambda infra: [mcp_spec(infra)], migrate=False, banner=False)


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("service", choices=("api", "mcp"))


@command(
    "serve",
    "replace this process with the API or MCP server on the configured servers (for containers)",
    _serve_arguments,
)
def _serve(args: argparse.Namespace) -> int:
    settings = load_settings(args.service)
    argv = uvicorn_argv(args.service, settings)
    env = {**os.environ, "MINSY_SERVICE": args.service, "PYTHONUNBUFFERED": "1"}
    # exec: the container's stop signal reaches uvicorn itself.
    os.execve(argv[0], argv, env)


def _worker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kind", choices=("cpu", "io"), required=True, help="cpu: backtest,stress; io: the rest"
    )


@command("worker", "run a Celery worker", _worker_arguments)
def _worker(args: argparse.Namespace) -> int:
    return _run_services(lambda infra: [worker_spec(infra, args.kind)], migrate=False, banner=False)


@command("beat", "run the Celery beat scheduler")
def _beat(_args: argparse.Namespace) -> int:
    return _run_services(lambda infra: [beat_spec(infra)], migrate=False, banner=False)


@command("migrate", "create the database if missing and apply Alembic migrations (upgrade head)")
def _migrate(_args: argparse.Namespace) -> int:
    from alembic import command as alembic_command
    from alembic.config import Config

    settings = load_settings()
    prefixer = _prefixer()
    infra = resolve_infrastructure(settings, prefixer, redis=False)
    try:
        config = Config(str(REPO_ROOT / "alembic.ini"))
        # The migrations' env.py takes this URL over the settings: the server actually chosen.
        config.attributes["database_url"] = infra.postgres.url
        alembic_command.upgrade(config, "head")
        prefixer.note("database is at the latest migration")
    finally:
        infra.release(prefixer)
    return 0


def _infra_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detach", action="store_true", help="leave embedded servers running and exit")


@command(
    "infra",
    "only PostgreSQL and Redis (configured or embedded): print their URLs, keep them running",
    _infra_arguments,
)
def _infra(args: argparse.Namespace) -> int:
    settings = load_settings()
    prefixer = _prefixer()
    supervisor = Supervisor(prefixer)
    supervisor.install_signal_handlers()
    infra = resolve_infrastructure(settings, prefixer)
    prefixer.note(f"export DATABASE_URL='{infra.postgres.url}'")
    prefixer.note(f"export REDIS_URL='{infra.redis.url}'")
    if args.detach:
        prefixer.note("left running; stop embedded servers with `minsy stop`")
        return 0
    if not (infra.postgres.started_here or infra.redis.started_here):
        prefixer.note("nothing was started here, so nothing to keep running")
        return 0
    prefixer.note("Press Ctrl-C to stop.")
    supervisor.stop_requested.wait()
    infra.release(prefixer)
    return 0


@command("stop", "stop the embedded PostgreSQL and Redis running from the data folder")
def _stop(_args: argparse.Namespace) -> int:
    from packages.infra.embedded import EmbeddedPostgres, EmbeddedRedis

    data_dir = load_settings().runtime.data_dir
    prefixer = _prefixer()
    for name, server in (
        ("PostgreSQL", EmbeddedPostgres(data_dir / "postgres")),
        ("Redis", EmbeddedRedis(data_dir / "redis")),
    ):
        prefixer.note(f"embedded {name}: {'stopped' if server.stop() else 'not running'}")
    return 0


def _status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="API base URL (default: from settings)")
    parser.add_argument("--json", action="store_true", help="print the raw JSON")


def _render(value: Any, indent: int = 0) -> Iterator[str]:
    pad = "  " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                yield f"{pad}{key}:"
                yield from _render(item, indent + 1)
            else:
                yield f"{pad}{key}: {item}"
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list):
                yield f"{pad}-"
                yield from _render(item, indent + 1)
            else:
                yield f"{pad}- {item}"
    else:
        yield f"{pad}{value}"


@command("status", "show GET /api/v1/status of a running API", _status_arguments)
def _status(args: argparse.Namespace) -> int:
    import httpx

    if args.url:
        base = args.url.rstrip("/")
    else:
        settings = load_settings("api")
        base = f"http://{_connect_host(settings.api.host)}:{settings.api.port}"
    try:
        response = httpx.get(f"{base}/api/v1/status", timeout=10)
    except httpx.HTTPError as error:
        print(f"API at {base} is not answering: {error}", file=sys.stderr)
        return 1
    try:
        body = response.json()
    except ValueError:
        body = response.text
    print(json.dumps(body, indent=2) if args.json else "\n".join(_render(body)))
    return 0 if response.is_success else 1


def _probe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url")
    parser.add_argument("--any-status", action="store_true", help="any HTTP answer counts, not only 2xx")
    parser.add_argument("--timeout", type=float, default=3.0)


@command("probe", "exit 0 when URL answers (for container health checks)", _probe_arguments)
def _probe(args: argparse.Namespace) -> int:
    return 0 if http_ok(args.url, any_status=args.any_status, timeout=args.timeout) else 1


# ==================================================================================================
# Market data: cold start, its state, file imports (run here, against the resolved servers)
# ==================================================================================================
def _market_data_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser(
        "ensure", help="load the configured archives and the packaged demo data (idempotent), with progress"
    )
    status = actions.add_parser("status", help="cold-start state and the shared inventory")
    status.add_argument("--json", action="store_true", help="print the raw JSON")
    imports = actions.add_parser(
        "import",
        help="import bars from a CSV or Parquet file and print its data-quality report",
        description=(
            "Without --user the bars become shared data; with --user they are that user's private "
            "dataset, recorded as one of their imports."
        ),
    )
    imports.add_argument("file", type=Path)
    imports.add_argument("--symbol", required=True)
    imports.add_argument("--market", required=True, choices=("us_stocks", "crypto", "forex", "futures"))
    imports.add_argument("--timeframe", required=True, help="1m, 5m, 15m, 30m, 1h, 2h, 4h, 1d or 1w")
    imports.add_argument("--timezone", required=True, help="IANA zone of timestamps without an offset")
    imports.add_argument(
        "--map",
        default="",
        help="bar field=column pairs, comma separated, e.g. ts=Date,close=Adj Close,volume= (empty: none)",
    )
    imports.add_argument(
        "--gap-policy", default="keep", choices=("keep", "forward_fill", "drop_incomplete_sessions")
    )
    imports.add_argument("--format", choices=("csv", "parquet"), help="default: detected from the content")
    imports.add_argument("--outlier-threshold", type=float, default=10.0)
    imports.add_argument("--user", help="email of the user who owns the import (default: shared data)")
    imports.add_argument("--json", action="store_true", help="print the raw JSON")


def parse_column_map(text: str) -> dict[str, str | None]:
    """``ts=Date,volume=`` -> {"ts": "Date", "volume": None} (an empty column means none)."""
    mapping: dict[str, str | None] = {}
    for pair in filter(None, (item.strip() for item in text.split(","))):
        field, separator, column = pair.partition("=")
        if not separator or not field.strip():
            raise ValueError(f"--map entry {pair!r} is not field=column")
        mapping[field.strip()] = column.strip() or None
    return mapping


@command(
    "market-data",
    "market data: `ensure` loads the archives, `status` shows them, `import FILE` imports bars",
    _market_data_arguments,
)
def _market_data(args: argparse.Namespace) -> int:
    import asyncio

    from packages.core.errors import AppError
    from packages.core.market_data import admin
    from packages.core.market_data.schemas import ImportParams
    from packages.core.resources import Resources

    prefixer = _prefixer()
    infra = resolve_infrastructure(load_settings(), prefixer)
    os.environ.update(DATABASE_URL=infra.postgres.url, REDIS_URL=infra.redis.url)
    settings = load_settings()

    async def run() -> tuple[int, Any]:
        resources = Resources.open(settings, pooled=False)
        try:
            if args.action == "ensure":
                state = await admin.ensure(resources, prefixer.note)
                return (0 if state["state"] in ("done", "already_running") else 1), state
            if args.action == "status":
                report = await admin.status(resources)
                return (0 if report["status"] == "ok" else 1), report
            params = ImportParams.model_validate(
                {
                    "market": args.market,
                    "symbol": args.symbol,
                    "timeframe": args.timeframe,
                    "timezone": args.timezone,
                    "mapping": parse_column_map(args.map),
                    "gap_policy": args.gap_policy,
                    "file_format": args.format,
                    "outlier_threshold": args.outlier_threshold,
                }
            )
            data = await asyncio.to_thread(args.file.read_bytes)
            return 0, await admin.import_file(resources, data, args.file.name, params, args.user)
        finally:
            await resources.close()

    try:
        code, result = asyncio.run(run())
    except (AppError, ValueError, OSError) as error:
        print(f"minsy market-data {args.action}: {error}", file=sys.stderr)
        return 1
    finally:
        infra.release(prefixer)
    as_json = getattr(args, "json", False) or args.action == "ensure"
    print(json.dumps(result, indent=2) if as_json else "\n".join(_render(result)))
    return code


# ==================================================================================================
# Trading: the operator's global kill switch (run here, against the resolved servers)
# ==================================================================================================
def _trading_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    switch = actions.add_parser(
        "kill-switch",
        help="the global kill switch: no deployment of anyone places a new order while it is on",
        description=(
            "Operators only (the API has no admin role and answers 403 to a user asking for the global "
            "scope). 'on' takes effect at every deployment's next cycle; --flatten also closes every "
            "position. 'off' clears it; 'status' shows it."
        ),
    )
    switch.add_argument("--global", dest="state", choices=("on", "off", "status"), required=True)
    switch.add_argument("--reason", help="why (required with on; recorded and shown to users)")
    switch.add_argument("--flatten", action="store_true", help="with on: close every position too")
    switch.add_argument(
        "--operator", help="who is switching (recorded as operator:<name>; default: the login name)"
    )


@command("trading", "paper trading operations: `kill-switch --global on|off|status`", _trading_arguments)
def _trading(args: argparse.Namespace) -> int:
    import asyncio
    import getpass

    from packages.core.resources import Resources
    from packages.core.trading import kill_switch

    if args.state == "on" and not args.reason:
        print("minsy trading kill-switch: --reason is required with --global on", file=sys.stderr)
        return 2
    operator = f"operator:{args.operator or getpass.getuser()}"
    prefixer = _prefixer()
    infra = resolve_infrastructure(load_settings(), prefixer)
    os.environ.update(DATABASE_URL=infra.postgres.url, REDIS_URL=infra.redis.url)
    settings = load_settings()

    async def run() -> dict[str, Any]:
        resources = Resources.open(settings, pooled=False)
        try:
            async with resources.unit_of_work() as uow:
                if args.state == "on":
                    switch, created = await kill_switch.set_global(
                        uow, operator, args.reason, flatten=args.flatten
                    )
                    return {"set": created, "in_force": [switch.model_dump(mode="json")]}
                if args.state == "off":
                    cleared = await kill_switch.clear_global(uow, operator, args.reason)
                    return {"cleared": [s.model_dump(mode="json") for s in cleared], "in_force": []}
                in_force = await kill_switch.global_switches(uow)
                return {"in_force": [s.model_dump(mode="json") for s in in_force]}
        finally:
            await resources.close()

    try:
        result = asyncio.run(run())
    finally:
        infra.release(prefixer)
    print(json.dumps(result, indent=2))
    return 0


# ==================================================================================================
# Entry point
# ==================================================================================================
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minsy", description="Run the Minsy backend stack or one of its services."
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for spec in COMMANDS.values():
        sub = subcommands.add_parser(spec.name, help=spec.help, description=spec.help)
        if spec.arguments is not None:
            spec.arguments(sub)
        sub.set_defaults(handler=spec.handler)
    return parser


def main(argv: list[str] | None = None) -> None:
    from packages.infra.embedded import EmbeddedServiceError
    from packages.shared_settings import SettingsError

    args = build_parser().parse_args(argv)
    try:
        code = args.handler(args)
    except (SettingsError, EmbeddedServiceError) as error:
        print(f"minsy: {error}", file=sys.stderr)
        code = 2
    raise SystemExit(code)


if __name__ == "__main__":
    main()
