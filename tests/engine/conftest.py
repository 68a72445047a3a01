"""Every engine test that uses Redis runs twice: on the single test Redis ("single") and on
a 3-master Redis Cluster started for the session on free loopback ports ("cluster").

TEST_REDIS_BACKENDS (default "single,cluster") picks the backends; `-k cluster` or
`-k single` selects one too. The cluster is started only when a cluster test runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from amphi.settings import Settings
from runtime.devservices import Services
from tests._cluster import running_cluster

BACKENDS = [b.strip() for b in os.environ.get("TEST_REDIS_BACKENDS", "single,cluster").split(",")
            if b.strip()]


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if "cluster" not in BACKENDS:
        pytest.skip("TEST_REDIS_BACKENDS leaves the cluster out")
    with running_cluster(Path(tmp_path_factory.mktemp("redis-cluster"))) as url:
        yield url


@pytest.fixture(scope="session", params=BACKENDS)
def redis_backend(request: pytest.FixtureRequest) -> str:
    if request.param not in ("single", "cluster"):
        raise ValueError(f"TEST_REDIS_BACKENDS: unknown backend {request.param!r}")
    return request.param


@pytest.fixture(scope="session")
def settings(settings: Settings, services: Services, redis_backend: str,
             request: pytest.FixtureRequest) -> Settings:
    """The suite's settings with REDIS_URL on the chosen backend (RQ stays on the single
    Redis, as Settings requires with a cluster)."""
    if redis_backend == "single":
        return settings
    url = request.getfixturevalue("redis_cluster_url")
    return settings.replace(redis_url=url, rq_redis_url=services.redis_url)
