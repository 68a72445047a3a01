"""The fan's address behind the load balancer: ``X-Forwarded-For`` (and
``X-Forwarded-Proto``) taken from trusted proxies only, those of ``FORWARDED_ALLOW_IPS``.

It does what uvicorn's ProxyHeadersMiddleware does, which ``amphi serve`` turns off, with a
cheaper trust check. uvicorn parses each address it has not seen with `ipaddress` and
remembers 4,096. When every fan comes from an address of their own, that parse ran on
nearly every hold: about 8 µs of a hold's 150 µs of API CPU, measured with wrk and 20,000
guest addresses. Here an IPv4 address, which has only one spelling, is looked up by its
text; only networks (CIDR) and IPv6 addresses are parsed.

The fan is the last address before the trusted ones: each proxy appends the address it
received the request from, and only the trusted part of the list can be believed.
"""

from __future__ import annotations

import functools
import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The proxies whose forwarding headers are believed: addresses, networks (CIDR), other
    names (a unix socket's), or "*" for any."""

    def __init__(self, spec: str) -> None:
        items = [item.strip() for item in spec.split(",") if item.strip()]
        self.anyone = "*" in items
        self.texts: set[str] = set()  # trusted IPv4 addresses as text, and other names
        self.addresses: set[Address] = set()
        self.networks: list[Network] = []
        for item in items:
            try:
                if "/" in item:
                    self.networks.append(ipaddress.ip_network(item))
                else:
                    address = ipaddress.ip_address(item)
                    self.addresses.add(address)
                    self.texts.add(str(address))
            except ValueError:  # not an address: compared as text, as uvicorn does
                self.texts.add(item)
        self._by_address = functools.lru_cache(maxsize=4096)(self._parse)

    def __contains__(self, host: str) -> bool:
        if self.anyone or host in self.texts:
            return True
        if not self.networks and ":" not in host:
            return False  # an IPv4 address or a name, not among the texts
        return self._by_address(host)

    def _parse(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return address in self.addresses or any(address in n for n in self.networks)

    def client(self, forwarded_for: str) -> tuple[str, int]:
        """The first address from the right that is not a trusted proxy, with its port
        (0 if none is given)."""
        hosts = [_host_port(item.strip()) for item in forwarded_for.split(",")]
        if not self.anyone:
            for host, port in reversed(hosts):
                if host not in self:
                    return host, port
        return hosts[0]  # every hop trusted (or "*"): the first is the client


def _host_port(value: str) -> tuple[str, int]:
    """"1.2.3.4:5678" -> ("1.2.3.4", 5678); an IPv6 address (or bracketed) keeps its colons."""
    if value.startswith("["):  # [::1]:8080
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() else 0
    if value.count(":") == 1:
        host, port = value.split(":")
        return host, int(port) if port.isdigit() else 0
    return value, 0


class ForwardedHeaders:
    """Pure ASGI middleware: from a trusted proxy, the scope's client and scheme become
    those the proxy forwarded."""

    def __init__(self, app: ASGIApp, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] in ("http", "websocket") and peer and peer[0] in self.trusted:
            proto, forwarded = None, []
            for name, value in scope["headers"]:
                if name == b"x-forwarded-for":
                    forwarded.append(value)
                elif name == b"x-forwarded-proto":
                    proto = value.decode("latin-1").strip()
            if proto in ("http", "https"):
                scope["scheme"] = proto if scope["type"] == "http" else proto.replace("http", "ws")
            if forwarded:
                host, port = self.trusted.client(b",".join(forwarded).decode("latin-1"))
                if host:
                    scope["client"] = (host, port)
        await self.app(scope, receive, send)
