"""Concurrent and repeated requests on one upload, over real HTTP, on local disk and S3.

A client that times out retries; two workers may complete the same upload; a move and a
delete may cross. Whatever the interleaving: exactly one object and one row per committed
upload, its bytes hash to the recorded SHA-256, and no request answers 5xx.
"""

from __future__ import annotations

import hashlib
import os

from tests.runtime.conftest import mp4_bytes, send_parts, start_multipart
from tests.runtime.safety import assert_consistent, together

ROUNDS = 8
RACERS = 4


def test_concurrent_and_repeated_completes_keep_one_object_and_one_row(backend_api):
    api = backend_api
    committed: dict[str, bytes] = {}
    for _ in range(ROUNDS):
        video = mp4_bytes(2 * 1024 * 1024 + int.from_bytes(os.urandom(2), "big"))
        session = start_multipart(api, "video", len(video), content_type="video/mp4").json()
        send_parts(session, video)
        url = f"{api.url}/api/upload/{session['id']}/complete"
        answers = together([lambda c, url=url: c.post(url, headers=api.auth)] * RACERS)
        statuses = [getattr(a, "status_code", a) for a in answers]
        assert set(statuses) <= {200, 409}, statuses
        assert 200 in statuses, statuses
        records = {a.json()["id"]: a.json() for a in answers if a.status_code == 200}
        assert list(records) == [session["id"]]
        record = records[session["id"]]
        assert all(a.json() == record for a in answers if a.status_code == 200)
        assert record["sha256"] == hashlib.sha256(video).hexdigest()
        retry = api.client.post(url, headers=api.auth)  # a client retrying after a timeout
        assert retry.status_code == 200, retry.text
        assert retry.json()["key"] == record["key"]
        committed[session["id"]] = video
        assert_consistent(api, committed)


def test_complete_racing_abort_leaves_all_or_nothing(backend_api):
    api = backend_api
    committed: dict[str, bytes] = {}
    for _ in range(ROUNDS):
        video = mp4_bytes(1024 * 1024)
        session = start_multipart(api, "video", len(video), content_type="video/mp4").json()
        send_parts(session, video)
        base = f"{api.url}/api/upload/{session['id']}"
        complete = lambda c, base=base: c.post(f"{base}/complete", headers=api.auth)  # noqa: E731
        abort = lambda c, base=base: c.delete(base, headers=api.auth)  # noqa: E731
        answers = together([complete, abort])
        completed, deleted = answers
        assert completed.status_code in (200, 404, 409), completed.text
        assert deleted.status_code in (204, 404), deleted.text
        final = api.client.get(base, headers=api.auth)
        if final.status_code == 200:  # committed and not deleted (the delete came first)
            committed[session["id"]] = video
        assert_consistent(api, committed)


def test_moves_and_deletes_crossing_lose_nothing_and_resurrect_nothing(backend_api):
    api = backend_api
    kept: dict[str, bytes] = {}
    for round_ in range(ROUNDS):
        data = mp4_bytes(64 * 1024)
        body = api.client.post(
            "/api/upload/video",
            params={"is_temp": "true"},
            content=data,
            headers=api.auth | {"Content-Type": "application/octet-stream"},
        ).json()
        base = f"{api.url}/api/upload/{body['id']}"
        move = lambda c, base=base: c.post(f"{base}/move-to-permanent", headers=api.auth)  # noqa: E731
        delete = lambda c, base=base: c.delete(base, headers=api.auth)  # noqa: E731
        calls = [move, move] if round_ % 2 else [move, delete, move]
        answers = together(calls)
        for answer in answers:
            assert answer.status_code in (200, 204, 404, 409), answer.text
        final = api.client.get(base, headers=api.auth)
        if final.status_code == 200:
            assert final.json()["is_temp"] is False
            kept[body["id"]] = data
        assert_consistent(api, kept)
