"""A focal point as stored: ``"0.250,0.700"`` (x, y in 0-1) in the catalog and in the
original's S3 user metadata ``x-amz-meta-stowage-focal``, which the edge reads with the same
GET as the original's bytes. No Pillow here: the catalog and the API use it too."""

from __future__ import annotations

import re

FOCAL_METADATA = "stowage-focal"
_COORDINATE = r"(0(?:\.\d{1,6})?|1(?:\.0{1,6})?)"
_FOCAL = re.compile(rf"^\s*{_COORDINATE}\s*,\s*{_COORDINATE}\s*$")


def focal_text(focal: tuple[float, float]) -> str:
    return f"{focal[0]:.3f},{focal[1]:.3f}"


def parse_focal(value: str | None) -> tuple[float, float] | None:
    """``"0.250,0.700"`` -> (0.25, 0.7); None for a missing or malformed value (a crop then
    takes the automatic centre rather than failing the variant)."""
    match = _FOCAL.match(value or "")
    return (float(match[1]), float(match[2])) if match else None
