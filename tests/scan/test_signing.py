"""Signed QR payloads: `AMPHI1.<base64url claims>.<base64url Ed25519 signature>`. A payload
verifies with the public key alone; every alteration is refused; the development key file is
generated once, even by processes starting together."""

from __future__ import annotations

import base64
import json
import stat
import string
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from amphi.signing import BadSignature, Signer, is_signed, load_signer, ticket_claims, verify

REPO = Path(__file__).resolve().parents[2]
CLAIMS = ticket_claims(code="AMPH-ABCDEFGHJK", ticket_id="6f1c1b2e-4a7b-4c2d-9e3f-0a1b2c3d4e5f",
                       kind="amphitheater", event_date="2027-06-19")
B64URL = string.ascii_letters + string.digits + "-_"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer(Ed25519PrivateKey.generate())


@pytest.fixture(scope="module")
def payload(signer: Signer) -> str:
    return signer.sign(CLAIMS)


def public_from_b64(b64: str) -> Ed25519PublicKey:
    """What a gate device rebuilds from the bundle's `public_key`: nothing else."""
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64, validate=True))


def test_round_trip(signer: Signer, payload: str) -> None:
    assert is_signed(payload)
    prefix, body, sig = payload.split(".")
    assert prefix == "AMPHI1"
    assert json.loads(unb64url(body)) == CLAIMS == {
        "c": "AMPH-ABCDEFGHJK", "t": "6f1c1b2e-4a7b-4c2d-9e3f-0a1b2c3d4e5f", "k": "amphitheater",
        "d": "2027-06-19"}
    assert len(unb64url(sig)) == 64  # an Ed25519 signature
    assert verify(payload, signer.public_key) == CLAIMS
    assert len(payload) <= 512  # fits tickets.qr_payload


def test_verify_needs_only_the_published_public_key_bytes(signer: Signer, payload: str) -> None:
    published = signer.public_key_b64()
    assert len(base64.b64decode(published, validate=True)) == 32
    assert verify(payload, public_from_b64(published)) == CLAIMS
    # and the raw key bytes are the signer's own public key
    raw = signer.public_key.public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)
    assert base64.b64decode(published) == raw


def test_plain_codes_are_not_signed_payloads() -> None:
    assert not is_signed("AMPH-ABCDEFGHJK")
    assert not is_signed("amphi1.x.y")
    assert not is_signed("AMPHI1")


def test_altered_claims_are_refused(signer: Signer, payload: str) -> None:
    prefix, body, sig = payload.split(".")
    for change in ({"d": "2027-06-20"}, {"k": "festival_day"}, {"c": "AMPH-ZZZZZZZZZZ"},
                   {"t": "00000000-0000-0000-0000-000000000000"}):
        other = b64url(json.dumps({**CLAIMS, **change}, separators=(",", ":"),
                                  sort_keys=True).encode())
        with pytest.raises(BadSignature):
            verify(f"{prefix}.{other}.{sig}", signer.public_key)
    # any one character of the claims changed
    for i in range(0, len(body), 7):
        c = "A" if body[i] != "A" else "B"
        with pytest.raises(BadSignature):
            verify(f"{prefix}.{body[:i]}{c}{body[i + 1:]}.{sig}", signer.public_key)


def test_another_tickets_signature_is_refused(signer: Signer, payload: str) -> None:
    other = signer.sign({**CLAIMS, "c": "AMPH-OTHERCODE2"})
    prefix, body, _ = payload.split(".")
    with pytest.raises(BadSignature):
        verify(f"{prefix}.{body}.{other.split('.')[2]}", signer.public_key)


def test_an_altered_signature_is_refused(signer: Signer, payload: str) -> None:
    head, sig = payload.rsplit(".", 1)
    raw = bytearray(unb64url(sig))
    for i in (0, 17, 31, 32, 63):
        flipped = bytearray(raw)
        flipped[i] ^= 0x01
        with pytest.raises(BadSignature):
            verify(f"{head}.{b64url(bytes(flipped))}", signer.public_key)


def test_every_other_spelling_of_the_signature_is_refused(signer: Signer, payload: str) -> None:
    """An altered code must not verify, even when the change only touches the base64 text:
    the last of the signature's 86 characters carries 2 bits and 4 unused ones, and extra
    '=' padding is ignored, so 16 spellings of each signature (plus padded ones) verify.
    amphi/signing.py `_unb64` decodes leniently; re-encoding and comparing (or
    `binascii.a2b_base64(..., strict_mode=True)`) would refuse them."""
    head, sig = payload.rsplit(".", 1)
    accepted = []
    for i in [*range(0, len(sig), 9), len(sig) - 2, len(sig) - 1]:
        for c in B64URL:
            if c == sig[i]:
                continue
            altered = f"{head}.{sig[:i]}{c}{sig[i + 1:]}"
            try:
                verify(altered, signer.public_key)
                accepted.append(altered[-6:])
            except BadSignature:
                pass
    for padded in (f"{payload}==", f"{payload}="):
        try:
            verify(padded, signer.public_key)
            accepted.append(padded[-6:])
        except BadSignature:
            pass
    assert accepted == [], f"{len(accepted)} altered payloads verify, e.g. ...{accepted[:3]}"


@pytest.mark.parametrize("cut", [1, 10, 43, 87, 100])
def test_a_truncated_payload_is_refused(signer: Signer, payload: str, cut: int) -> None:
    with pytest.raises(BadSignature):
        verify(payload[:-cut], signer.public_key)


@pytest.mark.parametrize("mangle", [
    lambda p: p.replace("AMPHI1.", "AMPHI2.", 1),
    lambda p: p.replace("AMPHI1.", "amphi1.", 1),
    lambda p: p.replace("AMPHI1.", "", 1),
    lambda p: "X" + p,
    lambda p: p + ".extra",
    lambda p: p.replace(".", "..", 1),
    lambda p: "",
    lambda p: "AMPHI1",
    lambda p: "AMPHI1..",
    lambda p: "AMPHI1.%%%.%%%",
], ids=["AMPHI2", "lowercase", "no-prefix", "leading-junk", "four-parts", "empty-part",
        "empty", "prefix-only", "empty-parts", "not-base64"])
def test_a_malformed_payload_is_refused(signer: Signer, payload: str, mangle) -> None:
    with pytest.raises(BadSignature):
        verify(mangle(payload), signer.public_key)


def test_a_genuine_signature_under_another_prefix_is_refused(signer: Signer) -> None:
    """The prefix is checked, not only signed: a signature made by the right key over
    `AMPHI2.<claims>` still does not make an AMPHI1 ticket."""
    body = b64url(json.dumps(CLAIMS).encode())
    head = f"AMPHI2.{body}"
    with pytest.raises(BadSignature):
        verify(f"{head}.{b64url(signer.private_key.sign(head.encode()))}", signer.public_key)


def test_another_key_is_refused(payload: str) -> None:
    stranger = Signer(Ed25519PrivateKey.generate())
    with pytest.raises(BadSignature):
        verify(payload, stranger.public_key)
    # and the stranger's own signature over the same claims is refused by ours
    with pytest.raises(BadSignature):
        verify(stranger.sign(CLAIMS), public_from_b64(Signer(
            Ed25519PrivateKey.generate()).public_key_b64()))


@pytest.mark.parametrize("claims", [["c", "AMPH-X"], {"t": "x"}, {"c": 12}, "AMPH-X", None])
def test_a_genuine_payload_without_a_ticket_code_is_refused(signer: Signer, claims) -> None:
    body = b64url(json.dumps(claims).encode())
    head = f"AMPHI1.{body}"
    forged = f"{head}.{b64url(signer.private_key.sign(head.encode()))}"
    with pytest.raises(BadSignature):
        verify(forged, signer.public_key)


# -- the key ----------------------------------------------------------------------------------
def test_load_signer_from_a_base64_seed(tmp_path: Path) -> None:
    seed = bytes(range(100, 132))
    key_file = tmp_path / "unused" / "key"
    signer = load_signer(base64.b64encode(seed).decode(), str(key_file))
    expected = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    assert verify(signer.sign(CLAIMS), expected) == CLAIMS
    assert signer.public_key_b64() == base64.b64encode(expected.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
    assert not key_file.exists() and not key_file.parent.exists()  # the seed wins


def test_load_signer_generates_a_key_file_once(tmp_path: Path) -> None:
    key_file = tmp_path / "nested" / "dir" / "ticket_signing_key"
    first = load_signer("", str(key_file))
    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # a private key
    assert len(base64.b64decode(key_file.read_text(), validate=True)) == 32
    second = load_signer("", str(key_file))
    assert second.public_key_b64() == first.public_key_b64()
    assert verify(first.sign(CLAIMS), second.public_key) == CLAIMS
    assert sorted(p.name for p in key_file.parent.iterdir()) == ["ticket_signing_key"]
    # and the file's seed is what TICKET_SIGNING_KEY would carry
    assert load_signer(key_file.read_text(), "").public_key_b64() == first.public_key_b64()


def test_processes_starting_together_end_with_one_key(tmp_path: Path) -> None:
    """Several processes load the missing development key at the same moment (as uvicorn
    workers and RQ workers starting together do): all end with the key in the file."""
    processes, rounds = 4, 3
    for n in range(rounds):
        key_file = tmp_path / f"round-{n}" / "ticket_signing_key"
        go = tmp_path / f"go-{n}"
        ready = [tmp_path / f"ready-{n}-{i}" for i in range(processes)]
        procs = [subprocess.Popen([sys.executable, "-m", "tests.scan._signer_proc",
                                   str(key_file), str(r), str(go)],
                                  cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for r in ready]
        try:
            deadline = time.monotonic() + 30
            while not all(r.exists() for r in ready):
                assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
                time.sleep(0.005)
            go.touch()  # all at once
            outputs = [p.communicate(timeout=30) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        assert [p.returncode for p in procs] == [0] * processes, outputs
        keys = {out.strip() for out, _ in outputs}
        assert keys == {load_signer("", str(key_file)).public_key_b64()}, (n, outputs)
        assert [p.name for p in key_file.parent.iterdir()] == ["ticket_signing_key"]
