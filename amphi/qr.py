"""QR images of ticket payloads, as PNG bytes or a data URI for JSON and email.

Made for speed, with qrcode's encoder: a confirmation email carries a QR code per ticket,
and at an on-sale's pace (100 emails a second) qrcode's defaults cost ~35 ms of CPU a code
on this project's 2-core machine. These choices bring that to ~2.5 ms:
- a fixed mask pattern: qrcode otherwise builds the symbol under all eight masks to score
  them. The score only prefers symbols with fewer large blocks; every mask is valid and
  decodes the same (ISO/IEC 18004 lets an encoder pick any), and our payloads are
  base64url text, which the mask already breaks up.
- the version computed from the payload's length, where qrcode's `fit` encodes the data
  again for each version it tries;
- the codewords (the bit stream and its Reed-Solomon error correction) computed with
  qrcode's own tables by a shift register (`codewords`): its division of Polynomial
  objects was half of the time;
- the modules placed on a template per version that qrcode draws once (function
  patterns, format and version information) along the data positions in qrcode's order,
  instead of qrcode's search of the whole matrix for every code. Tests hold the
  codewords and the matrix to qrcode's own, and read every image back with zxing-cpp;
- drawing the PNG from the module matrix with one Pillow resize instead of qrcode's image
  factory, which paints each module as a rectangle.
A QR library with a native encoder would replace this; none is in the stack.
"""

from __future__ import annotations

import base64
import functools
import io

import qrcode
from PIL import Image
from qrcode import LUT, base, util
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


def _divisor(ec_count: int) -> list[int]:
    """The Reed-Solomon generator polynomial of `ec_count` codewords, as logs of its
    coefficients after the leading 1 (qrcode's own table)."""
    return [base.glog(c) for c in LUT.rsPoly_LUT[ec_count][1:]]


_EXP = base.EXP_TABLE[:255] * 2  # exp of a sum of two logs, without the modulo


def _remainder(data: list[int], divisor_logs: list[int]) -> list[int]:
    """`data` times x^n modulo the generator: the block's error correction codewords, by
    the shift-register division (qrcode divides Polynomial objects, a new one a step)."""
    log, zero = base.LOG_TABLE, [0] * len(divisor_logs)
    ecc = list(zero)
    for byte in data:
        factor = byte ^ ecc[0]
        if factor:
            f = log[factor]
            ecc = [e ^ _EXP[f + g] for e, g in zip([*ecc[1:], 0], divisor_logs, strict=True)]
        else:
            ecc = [*ecc[1:], 0]
    return ecc


def codewords(data: bytes, version: int) -> list[int]:
    """What qrcode's `util.create_data` makes of `data` as one byte-mode segment at level M
    (mode, length, data, terminator, padding, error correction, interleaving), at a
    fraction of its cost; tests/test_qr.py holds it to qrcode's output."""
    blocks = base.rs_blocks(version, ERROR_CORRECT_M)
    capacity = sum(b.data_count for b in blocks)
    count_bits = util.length_in_bits(util.MODE_8BIT_BYTE, version)
    bits = (util.MODE_8BIT_BYTE << count_bits | len(data)) << 8 * len(data) | int.from_bytes(
        data, "big")
    length = 4 + count_bits + 8 * len(data)
    terminator = min(4, capacity * 8 - length)
    bits, length = bits << terminator, length + terminator
    if length % 8:
        bits, length = bits << (8 - length % 8), length + 8 - length % 8
    stream = list(bits.to_bytes(length // 8, "big"))
    stream += [util.PAD0, util.PAD1] * ((capacity - len(stream)) // 2 + 1)
    stream = stream[:capacity]
    data_blocks, ecc_blocks, offset = [], [], 0
    for block in blocks:
        chunk = stream[offset:offset + block.data_count]
        offset += block.data_count
        data_blocks.append(chunk)
        ecc_blocks.append(_remainder(chunk, _divisor(block.total_count - block.data_count)))
    out = []
    for group in (data_blocks, ecc_blocks):
        for i in range(max(len(b) for b in group)):
            out += [b[i] for b in group if i < len(b)]
    return out


@functools.cache
def _template(version: int) -> tuple[list[list[bool | None]], list[tuple[int, int]]]:
    """A symbol of `version` with its function patterns and its format and version
    information (our mask) drawn by qrcode, and its data modules in the order qrcode's
    `map_data` fills them (pairs of columns from the right, up then down)."""
    code = qrcode.QRCode(version=version, error_correction=ERROR_CORRECT_M, border=0,
                         mask_pattern=MASK_PATTERN)
    n = code.modules_count = version * 4 + 17
    code.modules = [[None] * n for _ in range(n)]
    for row, col in ((0, 0), (n - 7, 0), (0, n - 7)):
        code.setup_position_probe_pattern(row, col)
    code.setup_position_adjust_pattern()
    code.setup_timing_pattern()
    code.setup_type_info(False, MASK_PATTERN)
    if version >= 7:
        code.setup_type_number(False)
    order, row, step = [], n - 1, -1
    for right in range(n - 1, 0, -2):
        col = right - 1 if right <= 6 else right  # the vertical timing pattern is skipped
        while 0 <= row < n:
            order += [(row, c) for c in (col, col - 1) if code.modules[row][c] is None]
            row += step
        row, step = row - step, -step
    return code.modules, order


def matrix(payload: str) -> list[list[bool]]:
    """The symbol's modules, row by row (True: dark), without the quiet zone: the
    codewords' bits laid along the version's data modules, masked (mask 0 darkens where
    row + column is even), on qrcode's template. tests/test_qr.py holds it to qrcode's."""
    data = payload.encode()
    version = version_for(data)
    template, order = _template(version)
    modules = [list(row) for row in template]
    bits = "".join(f"{word:08b}" for word in codewords(data, version)).ljust(len(order), "0")
    for (row, col), bit in zip(order, bits, strict=False):
        modules[row][col] = (bit == "1") != ((row + col) % 2 == 0)
    return modules  # type: ignore[return-value]  # no module is None any more


_GREY = bytes([255, 0]) + bytes(254)  # a module's bool as a byte: light 255, dark 0


def png(payload: str) -> bytes:
    modules = matrix(payload)
    size = len(modules) + 2 * BORDER
    quiet = b"\xff" * BORDER
    rows = [quiet + bytes(row).translate(_GREY) + quiet for row in modules]
    blank = b"\xff" * size
    image = Image.frombytes("L", (size, size),
                            blank * BORDER + b"".join(rows) + blank * BORDER).convert("1")
    # one bit a pixel before scaling up: the same PNG as scaling the 8-bit image, 4x faster
    image = image.resize((size * BOX_SIZE, size * BOX_SIZE), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def data_uri(payload: str) -> str:
    return "data:image/png;base64," + base64.b64encode(png(payload)).decode()
