"""Geometry of a variant: the output size for ``fit`` and ``cover``, where a ``cover`` crop
sits, and the automatic crop centre when the original has no focal point.

The automatic centre is attention-like, as libvips' ``attention`` smartcrop: a saliency map
(edge strength of the luma plus colour saturation) of about 128 px a side, then
the crop window (a cover crop always spans the whole width or the whole height) slid along
the one free axis to where the map sums highest. Pillow only, no numpy: the map's column (or
row) means come from one BOX resize to a single row, and the slide is a prefix sum over a
few hundred values."""

from __future__ import annotations

from PIL import Image, ImageChops, ImageFilter

from stowage.images.colour import to_rgb_family

# The saliency map's longest side, about: detail finer than this does not move a crop.
SALIENCY_SIDE = 128


def _window(size: tuple[int, int], width: int, height: int) -> tuple[float, float]:
    """The largest window of the box's aspect ratio inside ``size``."""
    w, h = size
    if w * height > h * width:  # the original is wider than the box
        return h * width / height, float(h)
    return float(w), w * height / width


def output_size(size: tuple[int, int], width: int, height: int, fit: str) -> tuple[int, int]:
    """``fit``: inside width x height (height 0: any). ``cover``: exactly width x height.
    Never larger than the original: a cover of a small original is the largest window of the
    box's ratio, at the original's scale."""
    w, h = size
    if fit == "cover":
        scale = min(_window(size, width, height)[0] / width, 1.0)
        return max(1, round(width * scale)), max(1, round(height * scale))
    scale = min(width / w, (height / h) if height else float("inf"), 1.0)
    return max(1, round(w * scale)), max(1, round(h * scale))


def decode_box(size: tuple[int, int], width: int, height: int, fit: str) -> tuple[int, int]:
    """The smallest whole image a decode may shrink to and still give this variant."""
    if fit != "cover":
        return output_size(size, width, height, fit)
    w, h = size
    scale = min(max(width / w, height / h), 1.0)
    return max(1, round(w * scale + 0.5)), max(1, round(h * scale + 0.5))


def cover_box(
    size: tuple[int, int], width: int, height: int, centre: tuple[float, float]
) -> tuple[float, float, float, float]:
    """The source rectangle a cover variant shows: the box's aspect ratio, as large as the
    original allows, centred on ``centre`` (0-1) as far as the edges let it."""
    w, h = size
    window_w, window_h = _window(size, width, height)
    left = min(max(centre[0] * w - window_w / 2, 0.0), w - window_w)
    top = min(max(centre[1] * h - window_h / 2, 0.0), h - window_h)
    return left, top, left + window_w, top + window_h


def saliency_centre(image: Image.Image, width: int, height: int) -> tuple[float, float]:
    """The automatic crop centre (0-1) of ``image`` for a width x height cover."""
    window_w, window_h = _window(image.size, width, height)
    horizontal = window_w < image.width - 0.5
    if not horizontal and window_h >= image.height - 0.5:
        return 0.5, 0.5  # the box has the original's ratio: nothing to choose
    saliency = _saliency(image)
    # Column (or row) means of the map, one value per saliency pixel along the free axis.
    n = saliency.width if horizontal else saliency.height
    means = saliency.convert("F").resize((n, 1) if horizontal else (1, n), Image.Resampling.BOX)
    profile = list(means.get_flattened_data())
    fraction = window_w / image.width if horizontal else window_h / image.height
    k = max(1, min(n, round(n * fraction)))
    sums = [0.0]
    for value in profile:
        sums.append(sums[-1] + value)
    middle = (n - k) / 2
    scores = [sums[s + k] - sums[s] for s in range(n - k + 1)]
    # Windows within 1 % (or one grey level a column) of the best tie, and the most central
    # of them wins: an image without a subject, or with noise only, crops its centre.
    floor = max(scores) - max(0.01 * max(scores), k)
    start = min(
        (s for s, score in enumerate(scores) if score >= floor), key=lambda s: abs(s - middle)
    )
    # The centre window, as exactly as the map's whole pixels can say it.
    centre = 0.5 if abs(start - middle) <= 0.5 else (start + k / 2) / n
    return (centre, 0.5) if horizontal else (0.5, centre)


def _saliency(image: Image.Image) -> Image.Image:
    """Edge strength plus half the saturation, an L map of about SALIENCY_SIDE px a side.
    Edges are found at four times that scale and then averaged down, so fine detail (hair,
    text, foliage) still counts where a smaller copy would have blurred it flat."""
    small = image
    if small.mode not in ("RGB", "RGBA", "L", "LA"):
        small = to_rgb_family(small, "png")
    factor = -(-max(small.size) // (4 * SALIENCY_SIDE))  # rounded up: at most 4x the map
    if factor > 1:
        small = small.reduce(factor)
    if small.mode in ("RGBA", "LA"):
        # Transparent parts draw nothing: flatten onto mid grey, which has no saturation.
        background = Image.new("RGB", small.size, (128, 128, 128))
        background.paste(small.convert("RGBA"), mask=small.getchannel("A"))
        small = background
    rgb = small.convert("RGB")
    # Pillow's 3x3 filters copy the outermost pixels unfiltered: those are not edges.
    inner = (1, 1, max(2, rgb.width - 1), max(2, rgb.height - 1))
    edges = rgb.convert("L").filter(ImageFilter.FIND_EDGES).crop(inner)
    # Half weight: a colourful flat background must not outweigh a detailed subject.
    saturation = rgb.convert("HSV").getchannel("S").point(lambda value: value // 2).crop(inner)
    down = max(1, max(edges.size) // SALIENCY_SIDE)
    return ImageChops.add(edges.reduce(down), saturation.reduce(down))
