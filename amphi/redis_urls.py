"""Redis URLs as amphi takes them: ``redis://`` and ``rediss://`` (and ``unix://``) name
one server, ``redis+cluster://[user:password@]host:port[,host:port...]`` (``rediss+cluster``
for TLS) a Redis Cluster by its startup nodes. Parsing only: the clients are made in
`engine.transport.connection`."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def cluster_nodes(url: str) -> tuple[str, list[tuple[str, int]]]:
    """A cluster URL as the plain URL of its first startup node (which carries the
    credentials, TLS and query options for every node) and all startup nodes."""
    parts = urlsplit(url)
    if parts.scheme not in CLUSTER_SCHEMES:
        raise ValueError(f"not a Redis Cluster URL (redis+cluster://...): {url!r}")
    if parts.path not in ("", "/", "/0"):
        raise ValueError(f"a Redis Cluster has no database index: {parts.path!r} in the URL")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    nodes = []
    for item in hosts.split(","):
        node = urlsplit(f"//{item}")
        if not node.hostname:
            raise ValueError(f"Redis Cluster URL: no host in {item!r}")
        nodes.append((node.hostname, node.port or 6379))
    first = hosts.split(",")[0]
    netloc = f"{userinfo}@{first}" if userinfo else first
    plain = urlunsplit((CLUSTER_SCHEMES[parts.scheme], netloc, "", parts.query, ""))
    return plain, nodes
