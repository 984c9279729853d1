"""The tests' own Redis (tests/redis_server.py): a real redis-server on a free loopback port,
stopped and started again on the same port (outage tests), and a missing binary is a
failure naming how to install it, never a skip."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.redis_server import RedisServer, ping


def test_it_stops_and_starts_again_on_the_same_port_empty(redis_server: RedisServer) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_server.command("SET", "k", "v").startswith(b"+OK")
    assert (redis_server.dir / "redis.log").exists()  # its own directory, not a system one
    port = redis_server.port
    redis_server.stop()
    assert not ping(port) and not redis_server.running
    redis_server.start()
    assert redis_server.port == port and ping(port)
    assert redis_server.command("EXISTS", "k") == b":0\r\n"  # it persists nothing


def test_the_session_server_is_one_for_the_process(redis_session: RedisServer) -> None:
    assert ping(redis_session.port)
    redis_session.flush()
    assert redis_session.command("DBSIZE") == b":0\r\n"


def test_a_missing_redis_server_fails_naming_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tests.redis_server.shutil.which", lambda name: None)
    monkeypatch.setattr("tests.redis_server.Path.exists", lambda self: False)
    with pytest.raises(pytest.fail.Exception, match="apt-get install redis-server"):
        RedisServer(tmp_path)


def test_a_password_is_required_and_in_the_url(tmp_path: Path) -> None:
    with RedisServer(tmp_path, password="s3cret") as server:
        assert server.url == f"redis://:s3cret@127.0.0.1:{server.port}/0"
        assert server.command("PING") == b"+PONG\r\n"  # command() authenticates
