"""QR images of ticket payloads, as PNG bytes or a data URI for JSON and email.

Made for speed, with qrcode's encoder: a confirmation email carries a QR code per ticket,
and at an on-sale's pace (100 emails a second) qrcode's defaults cost ~35 ms of CPU a code
on this project's 2-core machine. Three choices bring that to ~6 ms:
- a fixed mask pattern: qrcode otherwise builds the symbol under all eight masks to score
  them. The score only prefers symbols with fewer large blocks; every mask is valid and
  decodes the same (ISO/IEC 18004 lets an encoder pick any), and our payloads are
  base64url text, which the mask already breaks up.
- the version computed from the payload's length, where qrcode's `fit` encodes the data
  again for each version it tries;
- drawing the PNG from the module matrix with one Pillow resize instead of qrcode's image
  factory, which paints each module as a rectangle.
A QR library with a native encoder would replace this; none is in the stack.
"""

from __future__ import annotations

import base64
import io

import qrcode
from PIL import Image
from qrcode import util
from qrcode.constants import ERROR_CORRECT_M

MASK_PATTERN = 0
BOX_SIZE = 6  # pixels a module
BORDER = 2  # modules of quiet zone (ISO asks 4; 2 reads fine on screens and paper)


def version_for(data: bytes) -> int:
    """The smallest QR version that holds `data` as one byte-mode segment at level M: what
    qrcode's `fit` finds by encoding the data once more for every guess."""
    for version in range(1, 41):
        bits = 4 + util.length_in_bits(util.MODE_8BIT_BYTE, version) + 8 * len(data)
        if bits <= util.BIT_LIMIT_TABLE[ERROR_CORRECT_M][version]:
            return version
    raise ValueError(f"{len(data)} bytes do not fit in a QR code")


def matrix(payload: str) -> list[list[bool]]:
    """The symbol's modules, row by row (True: dark), without the quiet zone."""
    data = payload.encode()
    code = qrcode.QRCode(version=version_for(data), error_correction=ERROR_CORRECT_M,
                         border=0, mask_pattern=MASK_PATTERN)
    code.add_data(data, optimize=0)  # one byte-mode segment, as version_for counts it
    code.make(fit=False)
    return code.modules


def png(payload: str) -> bytes:
    modules = matrix(payload)
    size = len(modules) + 2 * BORDER
    pixels = bytearray(b"\xff" * (size * size))
    for y, row in enumerate(modules):
        start = (y + BORDER) * size + BORDER
        for x, dark in enumerate(row):
            if dark:
                pixels[start + x] = 0
    image = Image.frombytes("L", (size, size), bytes(pixels))
    image = image.resize((size * BOX_SIZE, size * BOX_SIZE), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    image.convert("1").save(buf, format="PNG")
    return buf.getvalue()


def data_uri(payload: str) -> str:
    return "data:image/png;base64," + base64.b64encode(png(payload)).decode()
