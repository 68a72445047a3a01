"""QR images of ticket payloads, as PNG bytes or a data URI for JSON and email.

Made for speed, with qrcode's encoder: a confirmation email carries a QR code per ticket,
and at an on-sale's pace (100 emails a second) qrcode's defaults cost ~40 ms of CPU a code
on this project's 2-core machines. These choices bring that to ~1.3 ms (2026-12-06, on a
VM where it was 2.8 ms before the last two):
- a fixed mask pattern: qrcode otherwise builds the symbol under all eight masks to score
  them. The score only prefers symbols with fewer large blocks; every mask is valid and
  decodes the same (ISO/IEC 18004 lets an encoder pick any), and our payloads are
  base64url text, which the mask already breaks up.
- the version computed from the payload's length, where qrcode's `fit` encodes the data
  again for each version it tries;
- the codewords (the bit stream and its Reed-Solomon error correction) computed with
  qrcode's own tables by a shift register held in one integer, with the generator's 255
  multiples computed once (`codewords`): its division of Polynomial objects was half of
  the time, and a register kept as a list still 1.3 ms a code;
- the modules placed on a template per version that qrcode draws once (function
  patterns, format and version information) along the data positions in qrcode's order,
  by one `itemgetter` call that gathers the whole image, quiet zone included, from the
  masked data bits (`_layout`), instead of qrcode's search of the whole matrix for every
  code. Tests hold the codewords and the matrix to qrcode's own, and read every image back
  with zxing-cpp;
- drawing the PNG from those modules with one Pillow resize instead of qrcode's image
  factory, which paints each module as a rectangle, and compressing it at zlib's fastest
  level.
A QR library with a native encoder would replace this; none is in the stack.
"""

from __future__ import annotations

import base64
import functools
import io
import operator
from collections.abc import Callable

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


@functools.cache
def _generator_multiples(ec_count: int) -> tuple[int, ...]:
    """The Reed-Solomon generator polynomial of `ec_count` codewords (qrcode's own table),
    without its leading 1, times each byte value: each as one integer of `ec_count` bytes,
    so that a step of the division is one XOR."""
    logs = [base.glog(c) for c in LUT.rsPoly_LUT[ec_count][1:]]
    exp = base.EXP_TABLE
    return (0, *(int.from_bytes(bytes(exp[(base.glog(f) + g) % 255] for g in logs), "big")
                 for f in range(1, 256)))


def _remainder(data: list[int], ec_count: int) -> list[int]:
    """`data` times x^n modulo the generator: the block's error correction codewords, by a
    shift register held in one integer (qrcode divides Polynomial objects, a new one a step;
    a list a step took 25 times as long as this)."""
    multiples, top = _generator_multiples(ec_count), 8 * (ec_count - 1)
    mask = (1 << 8 * ec_count) - 1
    ecc = 0
    for byte in data:
        ecc = ((ecc << 8) & mask) ^ multiples[(ecc >> top) ^ byte]
    return list(ecc.to_bytes(ec_count, "big"))


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
        ecc_blocks.append(_remainder(chunk, block.total_count - block.data_count))
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


@functools.cache
def _layout(version: int) -> tuple[int, int, Callable[[str], tuple[str, ...]]]:
    """For `version`: how many data modules it has; mask 0 over them as an integer (bit i,
    from the most significant, set where data module i is at an even row + column); and a
    getter that takes the data modules' bits followed by "01" as a string and returns the
    whole symbol with its quiet zone, row by row, one character a module: placing the
    modules is one C call instead of a Python loop over them."""
    template, order = _template(version)
    count, n = len(order), len(template)
    data_index = {place: i for i, place in enumerate(order)}
    mask = int("".join("1" if (row + col) % 2 == 0 else "0" for row, col in order), 2)
    light, dark = count, count + 1  # where the "01" after the data bits are
    gather = []
    for row in range(-BORDER, n + BORDER):
        for col in range(-BORDER, n + BORDER):
            if not (0 <= row < n and 0 <= col < n):
                gather.append(light)
            elif (row, col) in data_index:
                gather.append(data_index[row, col])
            else:
                gather.append(dark if template[row][col] else light)
    return count, mask, operator.itemgetter(*gather)


def _symbol(payload: str) -> tuple[int, str]:
    """The symbol with its quiet zone, row by row, "1" a dark module and "0" a light one,
    and its side: the codewords' bits laid along the version's data modules, masked, on
    qrcode's template."""
    data = payload.encode()
    version = version_for(data)
    count, mask, lay_out = _layout(version)
    words = codewords(data, version)
    bits = int.from_bytes(bytes(words), "big") << (count - 8 * len(words))  # remainder bits 0
    return version * 4 + 17 + 2 * BORDER, "".join(lay_out(f"{bits ^ mask:0{count}b}01"))


def matrix(payload: str) -> list[list[bool]]:
    """The symbol's modules, row by row (True: dark), without the quiet zone.
    tests/test_qr.py holds it to what qrcode draws."""
    size, symbol = _symbol(payload)
    return [[symbol[row * size + col] == "1" for col in range(BORDER, size - BORDER)]
            for row in range(BORDER, size - BORDER)]


_PIXELS = bytes.maketrans(b"01", b"\xff\x00")  # a module as an 8-bit pixel: light, dark


def png(payload: str) -> bytes:
    size, symbol = _symbol(payload)
    image = Image.frombytes("L", (size, size), symbol.encode().translate(_PIXELS)).convert("1")
    # one bit a pixel before scaling up: the same PNG as scaling the 8-bit image, 4x faster
    image = image.resize((size * BOX_SIZE, size * BOX_SIZE), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    # zlib's fastest level: half the time of the default (6) for a PNG a fifth larger
    # (~1.6 KB), which an email does not notice
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def data_uri(payload: str) -> str:
    return "data:image/png;base64," + base64.b64encode(png(payload)).decode()
