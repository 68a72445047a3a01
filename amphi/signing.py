"""Signed QR payloads (Ed25519), so that a gate rejects a forged or altered code before any
database lookup and an offline gate device holding only the public key can verify a code.

Payload: ``AMPHI1.<base64url(JSON claims)>.<base64url(signature over the first two parts)>``
with claims ``{"c": code, "t": ticket id, "k": kind, "d": event date}``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

PREFIX = "AMPHI1"
log = logging.getLogger(__name__)


class BadSignature(ValueError):
    """The payload is malformed, or its signature does not verify."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """Strict: only the one canonical spelling decodes, so a signature has one form."""
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(raw) != text:
        raise ValueError("not canonical base64url")
    return raw


@dataclass(frozen=True)
class Signer:
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def public_key_b64(self) -> str:
        raw = self.public_key.public_bytes(serialization.Encoding.Raw,
                                           serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode()

    def sign(self, claims: dict[str, Any]) -> str:
        body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        head = f"{PREFIX}.{body}"
        return f"{head}.{_b64(self.private_key.sign(head.encode()))}"


def ticket_claims(*, code: str, ticket_id: str, kind: str, event_date: str,
                  version: int = 1) -> dict[str, str | int]:
    """A ticket's signed claims; `v`, the ticket's version, from its first transfer on (a
    payload without one is version 1)."""
    claims: dict[str, str | int] = {"c": code, "t": ticket_id, "k": kind, "d": event_date}
    if version > 1:
        claims["v"] = version
    return claims


def is_signed(payload: str) -> bool:
    return payload.startswith(PREFIX + ".")


def verify(payload: str, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """The claims of a signed payload, or BadSignature."""
    try:
        prefix, body, signature = payload.split(".")
        if prefix != PREFIX:
            raise ValueError("prefix")
        public_key.verify(_unb64(signature), f"{prefix}.{body}".encode())
        claims = json.loads(_unb64(body))
    except (ValueError, InvalidSignature, UnicodeDecodeError) as exc:
        raise BadSignature("The QR code is not a valid signed ticket.") from exc
    if not isinstance(claims, dict) or not isinstance(claims.get("c"), str):
        raise BadSignature("The QR code carries no ticket.")
    return claims


def load_signer(private_key_b64: str, key_file: str) -> Signer:
    """From TICKET_SIGNING_KEY (base64 of the raw 32-byte seed), else from `key_file`,
    generating one there on first use (development)."""
    if private_key_b64:
        return Signer(Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_key_b64)))
    path = Path(key_file)
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(base64.b64encode(raw).decode())
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)  # atomic: of processes starting together, one key wins
            log.warning("generated a development ticket signing key", extra={"path": str(path)})
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return Signer(Ed25519PrivateKey.from_private_bytes(base64.b64decode(path.read_text())))
