"""The edge handler end to end for ``cover``: the focal point comes from the original's S3
metadata in the same GET (moto's server, real boto3), the variant is stored under its
``-cover`` key beside the original's other variants."""

from __future__ import annotations

import pytest

from tests.lambda_edge.test_cover import BLUE, RED, photo, share
from tests.lambda_edge.test_handler import decoded, stored_keys


@pytest.mark.parametrize(
    ("metadata", "shown", "hidden"),
    [
        ({"stowage-focal": "0.120,0.500"}, BLUE, RED),  # the focal point, not the detail
        ({}, RED, BLUE),  # no focal point: the automatic centre finds the detailed subject
        ({"stowage-focal": "left"}, RED, BLUE),  # unreadable: ignored, not a 5xx
    ],
)
def test_cover_crop_centres_on_the_stored_focal_point(
    edge, s3, bucket, miss, metadata, shown, hidden
):
    s3.put_object(
        Bucket=bucket,
        Key="images/p.jpg",
        Body=photo(subject_at=0.85, marker_at=0.12),
        ContentType="image/jpeg",
        Metadata=metadata,
    )
    image = decoded(edge.handler(miss("/variants/images/p.jpg/400x400-cover.webp")))
    assert image.size == (400, 400)
    assert share(image, shown) > 0.05
    assert share(image, hidden) == 0
    assert stored_keys(s3, bucket) == [
        "images/p.jpg",
        "variants/images/p.jpg/400x400-cover.webp",
    ]


def test_fit_and_cover_of_one_box_are_two_variants(edge, s3, bucket, miss):
    s3.put_object(Bucket=bucket, Key="images/q.jpg", Body=photo(size=(1600, 800)))
    fitted = decoded(edge.handler(miss("/variants/images/q.jpg/400x400.jpeg")))
    covered = decoded(edge.handler(miss("/variants/images/q.jpg/400x400-cover.jpeg")))
    assert (fitted.size, covered.size) == ((400, 200), (400, 400))
    assert stored_keys(s3, bucket)[1:] == [
        "variants/images/q.jpg/400x400-cover.jpeg",
        "variants/images/q.jpg/400x400.jpeg",
    ]


def test_cover_outside_the_baked_allowlist_is_400_without_a_read(edge, s3_calls, miss):
    calls = s3_calls(edge)
    result = edge.handler(miss("/variants/images/q.jpg/640x0-cover.webp"))
    assert result["status"] == "400"
    assert "cover" in result["body"]
    assert calls == []
