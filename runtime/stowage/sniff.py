"""Content types from the bytes themselves, checked per upload kind.

A client's ``Content-Type`` and file name are claims; the first bytes of the body are
evidence. An object's stored Content-Type and its key's extension both come from
:func:`media_type`, never from the client: Nginx serves by extension, so an extension the
client chose would decide what a browser executes.
"""

from __future__ import annotations

from dataclasses import dataclass

from stowage.errors import UnsupportedType

SNIFF_BYTES = 512

# content type -> default extension, per kind
ALLOWED: dict[str, dict[str, str]] = {
    "video": {
        "video/mp4": ".mp4",
        "video/quicktime": ".mov",
        "video/webm": ".webm",
        "video/x-matroska": ".mkv",
        "video/x-msvideo": ".avi",
        "video/mpeg": ".mpg",
        "video/mp2t": ".ts",
    },
    "image": {
        "image/jpeg": ".jpg",
        "image/png": ".png",
        "image/gif": ".gif",
        "image/webp": ".webp",
        "image/avif": ".avif",
        "image/heic": ".heic",
        "image/bmp": ".bmp",
        "image/tiff": ".tiff",
    },
    "transcript": {
        "text/vtt": ".vtt",
        "application/x-subrip": ".srt",
        "application/json": ".json",
        "text/plain": ".txt",
    },
}

# A multipart upload that declares no type is taken to be the kind's usual one (and its
# bytes must then sniff as that).
DEFAULT_TYPE = {"video": "video/mp4", "image": "image/jpeg", "transcript": "text/plain"}

_FTYP_BRANDS = {
    b"avif": "image/avif",
    b"avis": "image/avif",
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heic",
    b"qt  ": "video/quicktime",
}


def sniff(head: bytes) -> str | None:
    """The content type the first bytes of a file show, or ``None`` if unrecognized."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head[:2] == b"BM" and len(head) > 14:
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return _FTYP_BRANDS.get(brand, "video/mp4")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "video/mpeg"
    if head[:1] == b"\x47" and len(head) > 188 and head[188:189] == b"\x47":
        return "video/mp2t"
    return _sniff_text(head)


def _sniff_text(head: bytes) -> str | None:
    if b"\x00" in head:
        return None
    text = head.removeprefix(b"\xef\xbb\xbf")
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The head may end inside a multi-byte character.
        if exc.start < len(text) - 3:
            return None
        decoded = text[: exc.start].decode("utf-8")
    stripped = decoded.lstrip()
    if stripped.startswith("WEBVTT"):
        return "text/vtt"
    if stripped[:1] in ("{", "["):
        return "application/json"
    lines = stripped.splitlines()
    if len(lines) >= 2 and lines[0].strip().isdigit() and "-->" in lines[1]:
        return "application/x-subrip"
    return "text/plain"


@dataclass(frozen=True)
class MediaType:
    content_type: str
    extension: str


def media_type(kind: str, content_type: str | None, *, evidence: str = "the file is") -> MediaType:
    """The one mapping from a type to what an object of ``kind`` is stored as (its
    Content-Type and key extension); 415 for a type the kind does not allow."""
    allowed = ALLOWED[kind]
    if content_type not in allowed:
        raise UnsupportedType(
            f"a {kind} upload must be one of {', '.join(allowed)};"
            f" {evidence} {content_type or 'unrecognized bytes'}"
        )
    return MediaType(content_type, allowed[content_type])


def sniffed_type(kind: str, head: bytes, filename: str | None = None) -> MediaType:
    """What an upload of ``kind`` whose bytes begin with ``head`` is stored as, or 415.
    ``filename`` (the client's) only names the file in the error."""
    named = f" ({filename})" if filename else ""
    return media_type(kind, sniff(head), evidence=f"the file{named} is")


def declared_type(kind: str, declared: str | None) -> MediaType:
    """What a multipart upload declares before any byte exists, checked against the kind's
    allowlist (415); its bytes must sniff as the same type at completion."""
    if declared is None:
        declared = DEFAULT_TYPE[kind]
    essence = declared.split(";", 1)[0].strip().lower()
    return media_type(kind, essence, evidence="it declares")
