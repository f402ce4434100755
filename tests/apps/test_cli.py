"""The `minsy` launcher: log prefixing, start order, clean shutdown, service definitions, subcommands."""

from __future__ import annotations

import http.server
import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from apps import cli
from packages.infra.allocator import ALLOCATOR_ENV_VAR, ALLOCATOR_TUNABLES
from packages.infra.embedded import ResolvedService
from packages.infra.embedded._common import find_free_port, pid_alive
from tests.support.stack import free_port, wait_until

REPO_ROOT = Path(cli.__file__).resolve().parents[1]

# A launcher process built from the real supervisor, with tiny Python children instead of the apps.
# Child "first" becomes ready by creating a marker file; "second" must only start after that.
LAUNCHER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from apps.cli import LogPrefixer, ServiceSpec, Supervisor, run_supervised

    scenario, workdir, stop_timeout = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
    marker = workdir / "first-ready"
    child = "import os, time, signal, sys, pathlib\\n{body}\\nprint('pid', os.getpid(), flush=True)\\n{tail}"
    bodies = {
        "first": f"pathlib.Path({str(marker)!r}).touch()",
        "second": "signal.signal(signal.SIGTERM, signal.SIG_IGN)" if scenario == "stubborn" else "",
    }
    tails = {
        "first": "time.sleep(120)",
        "second": "sys.exit(3)" if scenario == "crash" else "time.sleep(120)",
    }
    specs = [
        ServiceSpec(
            name=name,
            argv=[sys.executable, "-c", child.format(body=bodies[name], tail=tails[name])],
            env={"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"},
            ready=(marker.exists if name == "first" else None),
            ready_label=str(marker),
        )
        for name in ("first", "second")
    ]
    supervisor = Supervisor(LogPrefixer(sys.stdout, colour=False, names=("first", "second")), stop_timeout_s=stop_timeout)
    supervisor.install_signal_handlers()
    raise SystemExit(run_supervised(supervisor, specs, on_ready=lambda: supervisor.prefixer.note("ALL READY")))
    """
)


class Launcher:
    def __init__(self, scenario: str, workdir: Path, stop_timeout_s: float = 10.0) -> None:
        script = workdir / "launcher.py"
        script.write_text(LAUNCHER)
        self.process = subprocess.Popen(
            [sys.executable, str(script), scenario, str(workdir), str(stop_timeout_s)],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                match = re.search(pattern, line)
                if match:
                    return match
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines))

    def child_pids(self) -> dict[str, int]:
        return {name: int(self.wait_for(rf"^{name}\s+\| pid (\d+)").group(1)) for name in ("first", "second")}

    def finish(self, timeout: float = 30.0) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code


def _gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_launcher_starts_in_order_and_stops_every_child_on_a_signal(tmp_path: Path, stop_signal: int) -> None:
    launcher = Launcher("normal", tmp_path)
    try:
        launcher.wait_for(r"ALL READY")
        pids = launcher.child_pids()
        text = "\n".join(launcher.lines)
        # "second" started only once "first" was ready (its marker existed).
        assert text.index("first is ready") < text.index("started second")
        assert all(pid_alive(pid) for pid in pids.values())
        launcher.process.send_signal(stop_signal)
        assert launcher.finish() == 0
    finally:
        if launcher.process.poll() is None:
            launcher.process.kill()
    assert all(_gone(pid) for pid in pids.values()), launcher.lines
    assert any("all services stopped" in line for line in launcher.lines)


def test_a_child_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    launcher = Launcher("stubborn", tmp_path, stop_timeout_s=1.0)
    try:
        launcher.wait_for(r"ALL READY")
        pids = launcher.child_pids()
        began = time.monotonic()
        launcher.process.send_signal(signal.SIGTERM)
        assert launcher.finish() == 0
        assert time.monotonic() - began < 10
    finally:
        if launcher.process.poll() is None:
            launcher.process.kill()
    assert all(_gone(pid) for pid in pids.values())
    assert any("second did not stop in time: killing it" in line for line in launcher.lines)


def test_a_child_exiting_on_its_own_stops_the_rest_with_a_failure(tmp_path: Path) -> None:
    launcher = Launcher("crash", tmp_path)
    try:
        code = launcher.finish()
    finally:
        if launcher.process.poll() is None:
            launcher.process.kill()
    pids = launcher.child_pids()
    assert code == 1
    assert any("second exited unexpectedly with code 3" in line for line in launcher.lines), launcher.lines
    assert _gone(pids["first"])


def test_prefixer_pads_names_and_colours_each_service_consistently() -> None:
    plain = io.StringIO()
    prefixer = cli.LogPrefixer(plain, colour=False, names=("api", "worker-cpu"))
    prefixer.line("api", "hello")
    prefixer.line("worker-cpu", "ready")
    prefixer.note("up")
    assert plain.getvalue().splitlines() == ["api        | hello", "worker-cpu | ready", "minsy      | up"]

    coloured = io.StringIO()
    prefixer = cli.LogPrefixer(coloured, colour=True, names=("api", "mcp"))
    for name in ("api", "mcp", "api"):
        prefixer.line(name, "x")
    api_first, mcp_line, api_again = coloured.getvalue().splitlines()
    assert api_first == api_again and api_first != mcp_line.replace("mcp", "api")
    assert api_first.startswith("\033[") and "\033[0m" in api_first


def _fake_infra() -> cli.Infrastructure:
    return cli.Infrastructure(
        postgres=ResolvedService("postgres", "postgresql+asyncpg://postgres@127.0.0.1:55432/minsy", True),
        redis=ResolvedService("redis", "redis://127.0.0.1:56379", True),
    )


def test_service_definitions_use_the_venv_interpreter_and_hand_the_servers_to_each_child(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ALLOCATOR_ENV_VAR, raising=False)
    infra = _fake_infra()
    cpu, io_worker = cli.worker_spec(infra, "cpu"), cli.worker_spec(infra, "io")
    api, mcp, beat = cli.api_spec(infra), cli.mcp_spec(infra), cli.beat_spec(infra)
    for spec, service in (
        (cpu, "worker_cpu"),
        (io_worker, "worker_io"),
        (api, "api"),
        (mcp, "mcp"),
        (beat, "beat"),
    ):
        assert spec.argv[0] == sys.executable
        assert spec.env["DATABASE_URL"] == infra.postgres.url
        assert spec.env["REDIS_URL"] == infra.redis.url
        assert spec.env["MINSY_SERVICE"] == service
        assert spec.env["MINSY_EMBEDDED_SERVICES"] == "never"
    assert cpu.argv[1:6] == ["-m", "celery", "-A", "apps.worker.main", "worker"]
    # Only the engine's worker runs with the heap-keeping allocator settings.
    assert cpu.env[ALLOCATOR_ENV_VAR] == ALLOCATOR_TUNABLES
    assert all(ALLOCATOR_ENV_VAR not in spec.env for spec in (io_worker, api, mcp, beat))
    assert cpu.argv[cpu.argv.index("-Q") + 1] == "backtest,stress"
    assert cpu.argv[cpu.argv.index("--prefetch-multiplier") + 1] == "1"
    assert cpu.argv[cpu.argv.index("--pool") + 1] == "prefork"
    assert (
        io_worker.argv[io_worker.argv.index("-Q") + 1]
        == "market_data,paper_trading,notifications,maintenance"
    )
    assert io_worker.argv[io_worker.argv.index("-n") + 1] == "io@%h"
    assert api.argv[1:4] == ["-m", "uvicorn", "apps.api.main:app"] and api.ready is not None
    assert mcp.argv[3] == "apps.mcp.main:app" and mcp.ready_label.endswith("/strategy/mcp")
    assert beat.argv[beat.argv.index("-A") + 1] == "apps.beat.main"
    assert Path(beat.argv[beat.argv.index("-s") + 1]).parent.is_dir()


STATUS_BODY = {"status": "degraded", "components": {"database": {"ok": True}, "workers": ["cpu@host"]}}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/api/v1/status":
            body = json.dumps(STATUS_BODY).encode()
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200 if self.path == "/ok" else 406)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def http_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _run_main(*argv: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(argv))
    return int(exit_info.value.code or 0)


def test_probe_subcommand_for_health_checks(http_server: str) -> None:
    assert _run_main("probe", f"{http_server}/ok") == 0
    assert _run_main("probe", f"{http_server}/mcp") == 1
    assert _run_main("probe", "--any-status", f"{http_server}/mcp") == 0
    assert _run_main("probe", "--timeout", "0.5", f"http://127.0.0.1:{find_free_port(59111)}/") == 1


def test_every_subcommand_is_registered_and_worker_needs_a_kind(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.build_parser()
    help_text = parser.format_help()
    for name in ("up", "infra", "stop", "migrate", "api", "mcp", "worker", "beat", "status", "probe"):
        assert name in cli.COMMANDS and name in help_text
    assert parser.parse_args(["worker", "--kind", "io"]).kind == "io"
    with pytest.raises(SystemExit):
        parser.parse_args(["worker"])
    assert "--kind" in capsys.readouterr().err


def test_status_reports_an_unreachable_api(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run_main("status", "--url", f"http://127.0.0.1:{find_free_port(59211)}") == 1
    assert "not answering" in capsys.readouterr().err


def test_status_pretty_prints_the_api_answer_and_fails_on_an_error_status(
    http_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run_main("status", "--url", http_server) == 1
    assert capsys.readouterr().out.splitlines() == [
        "status: degraded",
        "components:",
        "  database:",
        "    ok: True",
        "  workers:",
        "    - cpu@host",
    ]
    assert _run_main("status", "--json", "--url", http_server) == 1
    assert json.loads(capsys.readouterr().out) == STATUS_BODY


# ==================================================================================================
# Forwarded client addresses: trusted only from the proxies in API_TRUSTED_PROXIES
# ==================================================================================================
def _configured_infra() -> cli.Infrastructure:
    """The servers of this test run (configured, so no embedded server is started or stopped)."""
    return cli.Infrastructure(
        postgres=ResolvedService("postgres", os.environ["DATABASE_URL"], False),
        redis=ResolvedService("redis", os.environ["REDIS_URL"], False),
    )


def _login(base: str, forwarded_for: str) -> int:
    email = f"spray-{uuid.uuid4().hex[:10]}@example.com"
    response = httpx.post(
        f"{base}/auth/login",
        json={"email": email, "password": "Winter2025!"},
        headers={"X-Forwarded-For": forwarded_for},
        timeout=10,
    )
    return response.status_code


def _forged_address() -> str:
    return f"198.51.100.{uuid.uuid4().int % 250 + 1}, 203.0.113.{uuid.uuid4().int % 250 + 1}"


def test_forwarded_for_from_an_untrusted_peer_does_not_reset_the_login_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real API, started as `minsy up` and `minsy api` start it, with no trusted proxy."""
    port = free_port()
    monkeypatch.setenv("API_PORT", str(port))
    monkeypatch.setenv("AUTH_ATTEMPTS_PER_MINUTE", "3")
    monkeypatch.delenv("API_TRUSTED_PROXIES", raising=False)
    spec = cli.api_spec(_configured_infra())
    log_path = tmp_path / "api.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            spec.argv, cwd=REPO_ROOT, env=spec.env, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        try:
            wait_until(
                lambda: httpx.get(f"{base}/health", timeout=1).status_code == 200,
                timeout=90,
                what="API",
                process=process,
            )
        except Exception as error:
            raise AssertionError(log_path.read_text(errors="replace")[-3000:]) from error
        # A password sprayer on one address: a new email and a new forged X-Forwarded-For each time.
        assert [_login(base, _forged_address()) for _ in range(3)] == [401, 401, 401]
        assert _login(base, _forged_address()) == 429
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def test_uvicorn_trusts_forwarded_headers_only_from_configured_proxies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("API_TRUSTED_PROXIES", raising=False)
    infra = _fake_infra()
    for spec in (cli.api_spec(infra), cli.mcp_spec(infra)):
        assert "--no-proxy-headers" in spec.argv and "--forwarded-allow-ips" not in spec.argv
    assert cli.uvicorn_argv("api", cli.load_settings("api")) == cli.api_spec(infra).argv

    monkeypatch.setenv("API_TRUSTED_PROXIES", "10.0.0.5, 172.18.0.0/16")
    argv = cli.api_spec(infra).argv
    assert "--no-proxy-headers" not in argv and "--proxy-headers" in argv
    assert argv[argv.index("--forwarded-allow-ips") + 1] == "10.0.0.5,172.18.0.0/16"
    monkeypatch.setenv("API_TRUSTED_PROXIES", "caddy")
    with pytest.raises(ValidationError, match="API_TRUSTED_PROXIES"):
        cli.load_settings("api")


def test_serve_replaces_itself_with_the_launchers_server_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """`minsy serve` (the container command) runs what `minsy up` runs, flags included."""
    monkeypatch.setenv("API_TRUSTED_PROXIES", "172.18.0.1")
    executed: list[tuple[str, list[str], dict[str, str]]] = []

    def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        executed.append((path, argv, env))
        raise SystemExit(0)

    monkeypatch.setattr(os, "execve", execve)
    for service in ("api", "mcp"):
        assert _run_main("serve", service) == 0
        path, argv, env = executed.pop()
        spec = (cli.api_spec if service == "api" else cli.mcp_spec)(_fake_infra())
        assert path == sys.executable and argv == spec.argv and env["MINSY_SERVICE"] == service
        assert argv[argv.index("--forwarded-allow-ips") + 1] == "172.18.0.1"
