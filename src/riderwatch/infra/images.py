"""Pictures people upload (clue photos, course pictures): type sniffed from content, decoded to prove they
are images, hashed (they are stored by SHA-256).

The original bytes of a clue photo are kept as evidence. What is served to everyone strips location and other
metadata losslessly (the metadata blocks are cut out; the picture data is not re-encoded), so a
photo without metadata is served byte for byte as uploaded.
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from riderwatch.errors import N_, InvalidInput, PayloadTooLarge, UnsupportedMedia

CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
MAX_PIXELS = 50_000_000


@dataclass(frozen=True)
class CheckedPhoto:
    data: bytes
    sha256: str
    content_type: str
    width: int
    height: int


def sniff(data: bytes) -> str | None:
    """The image kind from its magic bytes, whatever the file is called."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def check_photo(data: bytes, *, max_bytes: int, name: str = "photo") -> CheckedPhoto:
    """Accept a JPEG, PNG or WebP that really decodes; refuse anything else with a clear error."""
    if len(data) == 0:
        raise InvalidInput(N_("%(name)s is empty"), name=name)
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            N_("%(name)s is %(size)d bytes; the limit is %(max)d bytes"), name=name, size=len(data), max=max_bytes
        )
    kind = sniff(data)
    if kind is None:
        raise UnsupportedMedia(N_("%(name)s is not a JPEG, PNG or WebP image"), name=name)
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:
                raise PayloadTooLarge(
                    N_("%(name)s has too many pixels (%(width)d×%(height)d)"),
                    name=name,
                    width=img.width,
                    height=img.height,
                )
            width, height = img.size
            img.load()  # decode fully: a truncated or forged body fails here
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnsupportedMedia(
            N_("%(name)s could not be decoded as %(kind)s: %(reason)s"), name=name, kind=kind.upper(), reason=str(exc)
        ) from exc
    return CheckedPhoto(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        content_type=CONTENT_TYPES[kind],
        width=width,
        height=height,
    )


def strip_metadata(data: bytes) -> bytes:
    """The image without EXIF/XMP/comment blocks (where GPS positions live); pixels untouched."""
    kind = sniff(data)
    if kind == "jpeg":
        return _strip_jpeg(data)
    if kind == "png":
        return _strip_png(data)
    if kind == "webp":
        return _strip_webp(data)
    return data


def _strip_jpeg(data: bytes) -> bytes:
    out = bytearray(data[:2])
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            break
        marker = data[i + 1]
        if marker == 0xDA:  # start of scan: the rest is image data
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out += data[i : i + 2]
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        segment = data[i : i + 2 + length]
        # APP1 (EXIF, XMP), APP13 (IPTC/Photoshop) and COM can carry positions and identities.
        if marker not in (0xE1, 0xED, 0xFE):
            out += segment
        i += 2 + length
    out += data[i:]
    return bytes(out)


def _strip_png(data: bytes) -> bytes:
    out = bytearray(data[:8])
    i = 8
    while i + 8 <= len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        ctype = data[i + 4 : i + 8]
        chunk = data[i : i + 12 + length]
        if ctype not in (b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME"):
            out += chunk
        i += 12 + length
        if ctype == b"IEND":
            break
    return bytes(out)


def _strip_webp(data: bytes) -> bytes:
    chunks = bytearray()
    i = 12
    vp8x_at: int | None = None
    while i + 8 <= len(data):
        ctype = data[i : i + 4]
        (size,) = struct.unpack("<I", data[i + 4 : i + 8])
        padded = size + (size & 1)
        if ctype not in (b"EXIF", b"XMP "):
            if ctype == b"VP8X":
                vp8x_at = len(chunks)
            chunks += data[i : i + 8 + padded]
        i += 8 + padded
    if vp8x_at is not None:
        # Clear the EXIF (0x08) and XMP (0x04) flags now that those chunks are gone.
        flags_at = vp8x_at + 8
        chunks[flags_at] &= ~0x0C & 0xFF
    return b"RIFF" + struct.pack("<I", len(chunks) + 4) + b"WEBP" + bytes(chunks)
