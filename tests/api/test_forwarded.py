"""X-Forwarded-For behind the load balancer (api/forwarded.py): the same answers as uvicorn's
ProxyHeadersMiddleware, which it replaces, on generated proxy chains and trust lists; and
through the API, guests behind a trusted balancer are counted by their own address."""

from __future__ import annotations

import random
from typing import Any

import pytest
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api.forwarded import ForwardedHeaders, TrustedProxies

Scope = dict[str, Any]


async def seen_by_app(middleware_class: Any, trusted: str, peer: str,
                      headers: list[tuple[bytes, bytes]]) -> tuple[Any, str]:
    """(client, scheme) as the app behind the middleware sees them."""
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(scope)

    if middleware_class is ProxyHeadersMiddleware:
        middleware = ProxyHeadersMiddleware(app, trusted_hosts=trusted)
    else:
        middleware = ForwardedHeaders(app, trusted=TrustedProxies(trusted))
    scope = {"type": "http", "scheme": "http", "client": (peer, 40000), "headers": headers}
    await middleware(scope, None, None)
    return tuple(seen[0]["client"]), seen[0]["scheme"]


async def ours_and_uvicorns(trusted: str, peer: str,
                            headers: list[tuple[bytes, bytes]]) -> tuple[Any, Any]:
    return (await seen_by_app(ForwardedHeaders, trusted, peer, headers),
            await seen_by_app(ProxyHeadersMiddleware, trusted, peer, headers))


@pytest.mark.parametrize(("trusted", "peer", "forwarded", "client"), [
    ("127.0.0.1", "127.0.0.1", "203.0.113.9", ("203.0.113.9", 0)),
    ("127.0.0.1", "198.51.100.7", "203.0.113.9", ("198.51.100.7", 40000)),  # not trusted
    ("127.0.0.1", "127.0.0.1", "6.6.6.6, 203.0.113.9", ("203.0.113.9", 0)),  # spoofed head
    ("127.0.0.1,203.0.113.9", "127.0.0.1", "6.6.6.6, 203.0.113.9", ("6.6.6.6", 0)),
    ("10.0.0.0/8", "10.1.1.1", "198.51.100.3, 10.9.9.9", ("198.51.100.3", 0)),
    ("::1", "::1", "2001:db8::7, ::1", ("2001:db8::7", 0)),
    ("::1", "::1", "2001:db8::7, 0:0::1", ("2001:db8::7", 0)),  # another spelling of ::1
    ("*", "192.0.2.1", "203.0.113.9, 198.51.100.2", ("203.0.113.9", 0)),
    ("127.0.0.1", "127.0.0.1", "203.0.113.9:5678", ("203.0.113.9", 5678)),
    ("127.0.0.1", "127.0.0.1", "[2001:db8::7]:443", ("2001:db8::7", 443)),
    ("127.0.0.1", "127.0.0.1", "", ("127.0.0.1", 40000)),  # empty: the peer stays
])
async def test_the_client_is_the_last_address_before_the_trusted_proxies(
    trusted: str, peer: str, forwarded: str, client: tuple[str, int]
) -> None:
    ours, uvicorns = await ours_and_uvicorns(trusted, peer,
                                             [(b"x-forwarded-for", forwarded.encode())])
    assert ours[0] == client
    assert ours == uvicorns


async def test_scheme_and_several_headers_as_uvicorn_reads_them() -> None:
    headers = [(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-proto", b"https"),
               (b"x-forwarded-for", b"203.0.113.9")]
    ours, uvicorns = await ours_and_uvicorns("127.0.0.1", "127.0.0.1", headers)
    assert ours == (("203.0.113.9", 0), "https") == uvicorns
    ignored = await ours_and_uvicorns("127.0.0.1", "127.0.0.1",
                                      [(b"x-forwarded-proto", b"gopher")])
    assert ignored[0] == (("127.0.0.1", 40000), "http") == ignored[1]


async def test_agrees_with_uvicorn_on_generated_chains() -> None:
    rng = random.Random(20261124)
    pool = ["127.0.0.1", "10.0.0.5", "10.200.1.1", "192.168.1.20", "203.0.113.9",
            "198.51.100.77", "::1", "2001:db8::1", "2001:db8:0:0::1", "fe80::2",
            "unix-socket", "not an address", "1.2.3.4:80"]
    specs = ["127.0.0.1", "127.0.0.1,10.0.0.5", "10.0.0.0/8", "10.0.0.0/8,::1",
             "2001:db8::/32", "::1,192.168.1.20", "unix-socket", "*", "1.2.3.4"]
    for _ in range(2000):
        spec = rng.choice(specs)
        peer = rng.choice(pool)
        chain = ", ".join(rng.choice(pool) for _ in range(rng.randint(1, 4)))
        ours, uvicorns = await ours_and_uvicorns(spec, peer, [(b"x-forwarded-for",
                                                               chain.encode())])
        assert ours == uvicorns, (spec, peer, chain)


def test_trust_of_an_ipv4_text_needs_no_parse() -> None:
    trusted = TrustedProxies("127.0.0.1, 10.1.2.3")
    assert "10.1.2.3" in trusted and "127.0.0.1" in trusted
    assert "203.0.113.9" not in trusted
    assert trusted._by_address.cache_info().currsize == 0  # none of these was parsed
    assert "0:0::1" not in trusted  # IPv6 is parsed (and is not ::1's network here)
    assert trusted._by_address.cache_info().currsize == 1
