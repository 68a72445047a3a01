"""Bearer tokens are verified once per process and then served from a cache: the cache
must never outlive a token's expiry, nor accept a token under another secret."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from amphi import errors
from api.auth import decode_token, mint_token

SECRET = "token-cache-test-secret-0123456789abcdef"


def test_a_cached_token_expires_on_time() -> None:
    token = mint_token(SECRET, user_id="fan-exp", email="f@example.com",
                       ttl=timedelta(seconds=2))
    assert decode_token(token, SECRET).user_id == "fan-exp"
    assert decode_token(token, SECRET).email == "f@example.com"  # now from the cache
    time.sleep(2.1)
    with pytest.raises(errors.Unauthorized, match="expired"):
        decode_token(token, SECRET)


def test_a_cached_token_is_bound_to_its_secret() -> None:
    token = mint_token(SECRET, user_id="fan-key", email="k@example.com")
    assert decode_token(token, SECRET).user_id == "fan-key"
    with pytest.raises(errors.Unauthorized, match="invalid"):
        decode_token(token, SECRET + "-other")


def test_invalid_tokens_stay_invalid() -> None:
    token = mint_token(SECRET, user_id="fan-bad", email="b@example.com")
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for _ in range(2):
        with pytest.raises(errors.Unauthorized, match="invalid"):
            decode_token(tampered, SECRET)
