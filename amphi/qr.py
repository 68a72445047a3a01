"""QR images of ticket payloads, as PNG bytes or a data URI for JSON and email."""

from __future__ import annotations

import base64
import io

import qrcode
from qrcode.constants import ERROR_CORRECT_M


def png(payload: str) -> bytes:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=6, border=2)
    qr.add_data(payload)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image().save(buf, format="PNG")
    return buf.getvalue()


def data_uri(payload: str) -> str:
    return "data:image/png;base64," + base64.b64encode(png(payload)).decode()
