"""What a copied object carries besides its bytes: the sniffed Content-Type and the
Cache-Control configured for its prefix.

The one place migration asks :func:`stowage.sniff.sniff` (the function uploads use) for a
type, so objects arriving by migration are typed exactly as uploads are.
"""

from __future__ import annotations

from dataclasses import dataclass

from stowage.backends.base import ObjectAttributes, ObjectInfo
from stowage.sniff import SNIFF_BYTES, sniff

# Keys never change content (new uploads get new keys), so permanent media may be cached for
# a year; temp objects expire within a day and must not linger in caches.
DEFAULT_CACHE_CONTROL = {
    "videos/": "max-age=31536000, immutable",
    "images/": "max-age=31536000, immutable",
    "transcripts/": "max-age=31536000, immutable",
    "processed/": "max-age=31536000, immutable",
    "temp/": "no-store",
}
UNKNOWN_TYPE = "application/octet-stream"


def content_type(head: bytes) -> str:
    """The type the service's sniffing sees in an object's first bytes."""
    return sniff(head[:SNIFF_BYTES]) or UNKNOWN_TYPE


def parse_cache_rules(pairs: list[str]) -> dict[str, str]:
    """``PREFIX=VALUE`` pairs from ``--cache-control`` over the defaults; ``PREFIX=`` drops
    one."""
    rules = dict(DEFAULT_CACHE_CONTROL)
    for pair in pairs:
        prefix, sep, value = pair.partition("=")
        if not sep or not prefix:
            raise ValueError(f"{pair!r} is not PREFIX=VALUE (e.g. images/=max-age=3600)")
        if value:
            rules[prefix] = value
        else:
            rules.pop(prefix, None)
    return rules


@dataclass(frozen=True)
class Stamp:
    """Decides the attributes of each copy from the source's facts and first bytes."""

    cache_rules: dict[str, str]

    def cache_control(self, key: str, source: ObjectInfo) -> str | None:
        """The source's own Cache-Control if it has one, else the longest matching prefix's."""
        if source.cache_control:
            return source.cache_control
        matches = [p for p in self.cache_rules if key.startswith(p)]
        return self.cache_rules[max(matches, key=len)] if matches else None

    def __call__(self, key: str, source: ObjectInfo, head: bytes) -> tuple[str, ObjectAttributes]:
        attributes = ObjectAttributes(
            cache_control=self.cache_control(key, source),
            metadata=source.metadata,
            kms_key_id=source.kms_key_id,
        )
        return content_type(head), attributes
