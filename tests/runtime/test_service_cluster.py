"""Two `stowage serve` processes on one DynamoDB catalog and one bucket (moto's server): the
documented way past one host. Requests for the same uploads arrive at both at once;
afterwards every committed upload is one object and one row whose bytes hash to it, and
nothing deleted comes back."""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.runtime.conftest import image_bytes, mp4_bytes, send_parts, start_multipart
from tests.runtime.safety import assert_consistent, catalogued, stored_keys, together

ROUNDS = 6


@pytest.fixture
def pair(serve, bucket, dynamodb_table):
    settings = {
        "STOWAGE_STORAGE_MODE": "s3",
        "STOWAGE_S3_BUCKET": bucket,
        "STOWAGE_S3_PREFIX": "media/",
        "STOWAGE_CATALOG_URL": f"dynamodb://{dynamodb_table}",
    }
    return serve(**settings), serve(**settings)


def post(api, path):
    return lambda client: client.post(f"{api.url}{path}", headers=api.auth)


def delete(api, path):
    return lambda client: client.delete(f"{api.url}{path}", headers=api.auth)


def assert_answers(answers, allowed) -> list[int]:
    statuses = [getattr(a, "status_code", repr(a)) for a in answers]
    assert set(statuses) <= set(allowed), [getattr(a, "text", a) for a in answers]
    return statuses


def test_two_services_on_one_catalog_keep_one_object_one_row(pair):
    a, b = pair
    committed: dict[str, bytes] = {}

    # Uploads to both at once.
    payloads = [image_bytes(size=(20 + n, 9)) + os.urandom(n) for n in range(8)]
    uploads = together(
        [
            lambda c, api=(a, b)[n % 2], data=data: c.post(
                f"{api.url}/api/upload/image",
                params={"is_temp": "true"},
                files={"file": ("u.png", data)},
                headers=api.auth,
            )
            for n, data in enumerate(payloads)
        ]
    )
    assert_answers(uploads, {201})
    for answer, data in zip(uploads, payloads, strict=True):
        committed[answer.json()["id"]] = data
    temp_ids = list(committed)
    assert_consistent(a, committed)

    for round_ in range(ROUNDS):
        # One multipart upload completed through both services at once, twice each.
        video = mp4_bytes(1024 * 1024 + round_)
        session = start_multipart(a, "video", len(video), content_type="video/mp4").json()
        send_parts(session, video)
        path = f"/api/upload/{session['id']}/complete"
        statuses = assert_answers(
            together([post(a, path), post(b, path), post(a, path), post(b, path)]), {200, 409}
        )
        assert 200 in statuses
        committed[session["id"]] = video
        done = b.client.post(path, headers=b.auth)
        assert done.status_code == 200
        assert done.json()["sha256"] == hashlib.sha256(video).hexdigest()

        # One temp upload moved through both while a delete crosses (odd rounds).
        upload_id = temp_ids[round_]
        base = f"/api/upload/{upload_id}"
        calls = [post(a, f"{base}/move-to-permanent"), post(b, f"{base}/move-to-permanent")]
        if round_ % 2:
            calls.append(delete(b, base))
        assert_answers(together(calls), {200, 204, 404, 409})
        final = a.client.get(base, headers=a.auth)
        if final.status_code == 404:
            committed.pop(upload_id)
        else:
            assert final.json()["is_temp"] is False

        # One upload deleted through both at once.
        victim = list(committed)[-1]
        statuses = assert_answers(
            together([delete(a, f"/api/upload/{victim}"), delete(b, f"/api/upload/{victim}")]),
            {204, 404},
        )
        assert 204 in statuses
        committed.pop(victim)
        assert_consistent(a, committed)

    assert len(catalogued(b)) == len(committed) == len(stored_keys(a))
