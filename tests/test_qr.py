"""QR codes as fans and gates see them: every image `amphi.qr` draws is read back by a real
decoder (zxing-cpp) as exactly its payload, for payloads as long as signed ticket codes and
longer, so the speed-ups in amphi/qr.py (a fixed mask, the PNG drawn from the matrix) cost
nothing at the gate."""

from __future__ import annotations

import base64
import io
import secrets

import pytest
from PIL import Image

from amphi import qr

zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp (the dev extra) reads QR codes")


def read(png: bytes) -> list[str]:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return [found.text for found in zxingcpp.read_barcodes(image.convert("L"))]


@pytest.mark.parametrize("length", [16, 120, 215, 260, 400])
def test_every_code_reads_back_as_its_payload(length: int) -> None:
    for _ in range(5):
        payload = "AMPHI1." + secrets.token_urlsafe(length)[:length]
        assert read(qr.png(payload)) == [payload]


def test_data_uri_is_the_png() -> None:
    payload = "AMPHI1.eyJjIjoiQU1QSC0yMjIyMjIyMjIyIn0.c2ln"
    uri = qr.data_uri(payload)
    assert uri.startswith("data:image/png;base64,")
    assert read(base64.b64decode(uri.split(",", 1)[1])) == [payload]


def test_quiet_zone_and_module_size() -> None:
    image = Image.open(io.BytesIO(qr.png("AMPHI1.x")))
    modules = len(qr.matrix("AMPHI1.x"))
    assert image.size[0] == image.size[1] == (modules + 2 * qr.BORDER) * qr.BOX_SIZE
    corner = image.convert("L").getpixel((0, 0))
    assert corner == 255  # the quiet zone is white


@pytest.mark.parametrize("length", [1, 17, 120, 215, 400, 1200])
def test_codewords_are_what_qrcode_computes(length: int) -> None:
    """amphi.qr computes the codewords itself (for speed) and hands them to qrcode: they
    must be exactly qrcode's own, bit stream, padding, error correction and interleaving."""
    from qrcode import util
    from qrcode.constants import ERROR_CORRECT_M

    for _ in range(5):
        data = secrets.token_bytes(length)
        version = qr.version_for(data)
        theirs = util.create_data(version, ERROR_CORRECT_M,
                                  [util.QRData(data, util.MODE_8BIT_BYTE)])
        assert qr.codewords(data, version) == theirs


@pytest.mark.parametrize("length", [1, 17, 120, 215, 400, 1200])
def test_the_matrix_is_what_qrcode_draws(length: int) -> None:
    """amphi.qr places the modules itself on qrcode's template (for speed): the symbol must
    be exactly the one qrcode makes of the same bytes, version and mask."""
    import qrcode
    from qrcode import util
    from qrcode.constants import ERROR_CORRECT_M

    for _ in range(5):
        payload = secrets.token_urlsafe(length)[:length]
        data = payload.encode()
        code = qrcode.QRCode(version=qr.version_for(data), error_correction=ERROR_CORRECT_M,
                             border=0, mask_pattern=qr.MASK_PATTERN)
        code.add_data(util.QRData(data, util.MODE_8BIT_BYTE))
        code.make(fit=False)
        assert qr.matrix(payload) == code.modules
