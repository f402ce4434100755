"""Dockerfile, .dockerignore and Caddyfile: what the seed asks of them."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _instructions() -> list[str]:
    lines = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_installs_locked_dependencies_before_the_code() -> None:
    instructions = _instructions()
    assert instructions[0] == "FROM python:3.12-slim"
    deps = next(i for i, line in enumerate(instructions) if "--no-install-project" in line)
    assert "uv sync --frozen --no-dev --no-install-project" in instructions[deps]
    assert any(line.startswith("COPY pyproject.toml uv.lock") for line in instructions[:deps])
    code = next(i for i, line in enumerate(instructions) if line.startswith("COPY apps/"))
    assert deps < code
    for folder in ("packages/", "env/", "scripts/"):
        assert any(line.startswith(f"COPY {folder}") for line in instructions[code:])
    assert not any("ta-lib" in line.lower() and ".deb" in line for line in instructions)
    # The launcher execs uvicorn with the settings' flags (trusted proxies); inside the container the
    # servers listen on every interface.
    assert instructions[-1] == 'CMD ["minsy", "serve", "api"]'
    assert any("API_HOST=0.0.0.0" in line and "MCP_HOST=0.0.0.0" in line for line in instructions)


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image() -> None:
    ignored = set((REPO_ROOT / ".dockerignore").read_text().split())
    assert {"env/.env.secrets", ".venv", "var", ".git"} <= ignored


@dataclass
class Block:
    """One Caddyfile directive: its words and the directives of its ``{ ... }`` block."""

    words: list[str]
    children: list[Block] = field(default_factory=list)

    def walk(self) -> Iterator[Block]:
        yield self
        for child in self.children:
            yield from child.walk()


def _caddyfile() -> list[Block]:
    """The Caddyfile as nested directives (comments dropped, tabs or spaces, braces at line ends)."""
    root = Block(["<root>"])
    stack = [root]
    for number, raw in enumerate((REPO_ROOT / "Caddyfile").read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line == "}":
            stack.pop()
            assert stack, f"Caddyfile line {number}: unbalanced closing brace"
            continue
        opens = line.endswith("{")
        block = Block(shlex.split(line.removesuffix("{").strip()))
        stack[-1].children.append(block)
        if opens:
            stack.append(block)
    assert len(stack) == 1, "Caddyfile: a block is never closed"
    return root.children


def test_caddyfile_routes_hosts_and_paths_to_the_right_ports() -> None:
    sites = {site.words[0]: site for site in _caddyfile()}
    assert set(sites) == {"api.minsyai.com", "mcp.minsyai.com", "flower.minsyai.com"}

    def proxies(site: Block) -> list[Block]:
        return [block for block in site.walk() if block.words[0] == "reverse_proxy"]

    def upstreams(site: Block) -> set[str]:
        return {word for proxy in proxies(site) for word in proxy.words[1:]}

    assert upstreams(sites["api.minsyai.com"]) == {"127.0.0.1:8000"}
    assert upstreams(sites["mcp.minsyai.com"]) == {"127.0.0.1:8110"}
    assert upstreams(sites["flower.minsyai.com"]) == {"127.0.0.1:5555"}

    def flushes_at_once(proxy: Block) -> bool:
        return any(child.words == ["flush_interval", "-1"] for child in proxy.children)

    # The chat SSE stream is proxied without buffering, and so is MCP's streamable HTTP.
    api = sites["api.minsyai.com"]
    matchers = {block.words[0]: block.words[1:] for block in api.children if block.words[0].startswith("@")}
    assert matchers["@chat_stream"] == ["path", "/api/v1/chat/*"]
    chat = next(block for block in api.children if block.words == ["handle", "@chat_stream"])
    assert all(flushes_at_once(proxy) for proxy in proxies(chat))
    mcp = sites["mcp.minsyai.com"]
    mcp_matchers = {
        block.words[0]: block.words[1:] for block in mcp.children if block.words[0].startswith("@")
    }
    assert mcp_matchers["@mcp_domains"] == [
        "path",
        *(f"/{domain}/*" for domain in ("strategy", "backtest", "market", "stress", "trading")),
    ]
    assert all(flushes_at_once(proxy) for proxy in proxies(mcp))
    fallback = next(block for block in mcp.children if block.words == ["handle"])
    assert fallback.children[0].words == ["respond", "Not found", "404"]
