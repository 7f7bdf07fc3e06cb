"""Does a JPEG hold enough compressed data for the size its header declares?

libjpeg fills what a file does not contain with flat grey and only warns, and Pillow does not raise:
a JPEG whose header says 9000×9000 but whose data covers 16×16 pixels decodes "successfully" into a
grey picture. Every 8×8 block of a Huffman-coded JPEG costs at least one bit (its DC code) in a
progressive file and two (DC code and end-of-block) in a sequential one, so a file whose bytes after
its headers are fewer than ``blocks × bits / 8`` cannot be complete. That bound can never reject a
complete file; arithmetic-coded, lossless and hierarchical JPEGs (rare, not block-bounded the same
way) and frames whose height is set later (DNL) are not judged.
"""

from __future__ import annotations

import math

_SEQUENTIAL_HUFFMAN = frozenset({0xC0, 0xC1})
_PROGRESSIVE_HUFFMAN = 0xC2
_OTHER_FRAMES = frozenset({0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def _blocks(segment: bytes) -> int | None:
    """8×8 blocks in a frame (all components, subsampling applied), from an SOF segment's payload."""
    if len(segment) < 6:
        return None
    height = int.from_bytes(segment[1:3], "big")
    width = int.from_bytes(segment[3:5], "big")
    count = segment[5]
    factors = [
        (segment[7 + 3 * i] >> 4, segment[7 + 3 * i] & 0x0F)
        for i in range(count)
        if 8 + 3 * i <= len(segment)
    ]
    if not height or not width or not factors or len(factors) != count:
        return None
    h_max = max(h for h, _ in factors) or 1
    v_max = max(v for _, v in factors) or 1
    total = 0
    for h, v in factors:
        columns = math.ceil(math.ceil(width * h / h_max) / 8)
        rows = math.ceil(math.ceil(height * v / v_max) / 8)
        total += columns * rows
    return total


def scan_data_shortfall(data: bytes) -> str | None:
    """Why ``data`` (a JPEG) cannot hold all the pixels its header declares, or None when it can (or
    when it cannot be judged)."""
    if not data.startswith(b"\xff\xd8"):
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or start of scan: no frame seen before it
            return None
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2:
            return None
        if marker in _OTHER_FRAMES:
            return None
        if marker in _SEQUENTIAL_HUFFMAN or marker == _PROGRESSIVE_HUFFMAN:
            blocks = _blocks(data[pos + 4 : pos + 2 + length])
            if blocks is None:
                return None
            bits = 1 if marker == _PROGRESSIVE_HUFFMAN else 2
            needed = blocks * bits // 8
            available = len(data) - (pos + 2 + length)  # everything after the frame header, tables included
            if available < needed:
                return f"{available} bytes of image data for {blocks} blocks: at least {needed} needed"
            return None
        pos += 2 + length
    return None
