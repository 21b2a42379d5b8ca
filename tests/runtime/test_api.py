"""The HTTP API over real HTTP against `stowage serve` (uvicorn in its own process)."""

from __future__ import annotations

import hashlib
import os
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.runtime.conftest import TOKEN, image_bytes, mp4_bytes


@pytest.fixture
def api(serve):
    return serve()


def upload(api, kind: str, data: bytes, filename: str, *, is_temp=False, form=True, **headers):
    params = {"is_temp": str(is_temp).lower()}
    if form:
        return api.client.post(
            f"/api/upload/{kind}",
            params=params,
            files={"file": (filename, data)},
            headers=api.auth | headers,
        )
    return api.client.post(
        f"/api/upload/{kind}",
        params=params,
        content=data,
        headers=api.auth
        | {"X-Filename": filename, "Content-Type": "application/octet-stream"}
        | headers,
    )


def local_path(api, key: str):
    return api.root / key


def spool_files(api):
    return list((api.root / ".stowage-tmp").glob("*.part"))


class TestUploads:
    @pytest.mark.parametrize("form", [True, False], ids=["multipart-form", "raw-body"])
    def test_image_upload_contract(self, api, form):
        data = image_bytes("PNG")
        response = upload(api, "image", data, "cat.png", form=form)
        assert response.status_code == 201, response.text
        body = response.json()
        assert set(body) >= {
            "id",
            "key",
            "size",
            "sha256",
            "content_type",
            "is_temp",
            "created_at",
            "download_url",
        }
        assert body["size"] == len(data)
        assert body["sha256"] == hashlib.sha256(data).hexdigest()
        assert body["content_type"] == "image/png"
        assert body["is_temp"] is False
        today = time.strftime("%Y/%m/%d", time.gmtime())
        assert body["key"] == f"images/{today}/{body['id']}.png"
        assert local_path(api, body["key"]).read_bytes() == data

    def test_video_and_transcripts(self, api):
        video = upload(api, "video", mp4_bytes(), "clip.mp4", is_temp=True)
        assert video.status_code == 201
        assert video.json()["key"].startswith("temp/videos/")
        assert video.json()["is_temp"] is True
        srt = b"1\n00:00:01,000 --> 00:00:02,000\nHello\n"
        transcript = upload(api, "transcript-file", srt, "subs.srt")
        assert transcript.status_code == 201
        assert transcript.json()["content_type"] == "application/x-subrip"
        text = api.client.post(
            "/api/upload/transcript-text", json={"content": "héllo wörld"}, headers=api.auth
        )
        assert text.status_code == 201
        assert local_path(api, text.json()["key"]).read_text() == "héllo wörld"

    def test_type_is_sniffed_from_the_bytes(self, api):
        response = upload(api, "image", b"MZ\x90\x00 this is an executable", "innocent.png")
        assert response.status_code == 415
        assert response.json()["error"] == "unsupported_type"
        response = upload(api, "video", image_bytes("JPEG"), "clip.mp4")
        assert response.status_code == 415
        assert (
            not list((api.root / "images").rglob("*")) if (api.root / "images").exists() else True
        )
        assert spool_files(api) == []

    def test_too_large_is_413_and_leaves_nothing(self, serve):
        api = serve(STOWAGE_MAX_UPLOAD_BYTES="10000")
        big = mp4_bytes(20_000)
        for form in (True, False):
            response = upload(api, "video", big, "big.mp4", form=form)
            assert response.status_code == 413, response.text
            assert response.json()["error"] == "too_large"

        def chunks():  # no Content-Length: the limit holds as bytes arrive
            yield big[:5000]
            yield big[5000:]

        response = api.client.post(
            "/api/upload/video",
            content=chunks(),
            headers=api.auth
            | {"X-Filename": "big.mp4", "Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 413
        assert spool_files(api) == []
        assert not (api.root / "videos").exists()

    def test_bad_input(self, api):
        assert (
            api.client.post("/api/upload/image", content=b"", headers=api.auth).status_code == 400
        )
        form_without_file = api.client.post(
            "/api/upload/image", files={"other": ("x", b"y")}, headers=api.auth
        )
        assert form_without_file.status_code == 400
        assert "file" in form_without_file.json()["detail"]
        assert (
            api.client.post(
                "/api/upload/transcript-text", json={"nope": 1}, headers=api.auth
            ).json()["error"]
            == "bad_request"
        )
        assert (
            api.client.post(
                "/api/upload/image?is_temp=maybe", content=b"x", headers=api.auth
            ).status_code
            == 400
        )


class TestAuth:
    def test_every_api_route_needs_a_token(self, api):
        routes = [
            ("post", "/api/upload/image"),
            ("post", "/api/upload/multipart"),
            ("get", "/api/upload"),
            ("get", "/api/upload/abc"),
            ("get", "/api/upload/abc/download"),
            ("delete", "/api/upload/abc"),
            ("post", "/api/upload/cleanup-temp"),
            ("get", "/api/upload/stats/overview"),
            ("get", "/api/files/images/x.png"),
        ]
        for method, path in routes:
            missing = api.client.request(method, path)
            assert missing.status_code == 401, (method, path)
            assert missing.json()["error"] == "unauthorized"
            wrong = api.client.request(
                method, path, headers={"Authorization": "Bearer wrong-token"}
            )
            assert wrong.status_code == 403, (method, path)
        assert (
            api.client.get(
                "/api/upload/stats/overview",
                headers={"Authorization": "Bearer second-token-abcdefghijkl"},
            ).status_code
            == 200
        )

    def test_health_and_metrics_are_open(self, api):
        assert api.client.get("/healthz").json()["status"] == "ok"
        assert api.client.get("/metrics").status_code == 200


class TestLifecycle:
    def test_download_redirects_to_a_signed_expiring_link(self, api):
        data = image_bytes("JPEG")
        body = upload(api, "image", data, "p.jpg").json()
        redirect = api.client.get(f"/api/upload/{body['id']}/download", headers=api.auth)
        assert redirect.status_code == 307
        location = redirect.headers["location"]
        query = parse_qs(urlsplit(location).query)
        assert int(query["expires"][0]) > time.time()
        assert httpx.get(location).content == data  # served by the service: no Nginx here
        ranged = httpx.get(location, headers={"Range": "bytes=2-9"})
        assert ranged.status_code == 206
        assert ranged.content == data[2:10]
        assert ranged.headers["content-range"] == f"bytes 2-9/{len(data)}"
        tampered = location.replace(body["id"], body["id"][::-1])
        assert httpx.get(tampered).status_code in (403, 404)
        forged = location.replace(
            f"expires={query['expires'][0]}", f"expires={int(query['expires'][0]) + 1}"
        )
        assert httpx.get(forged).status_code == 403

    def test_expired_link_is_410(self, api):
        body = upload(api, "image", image_bytes(), "e.png").json()
        signed = api.client.get(f"/api/upload/{body['id']}/download", headers=api.auth).headers[
            "location"
        ]
        from stowage.signing import sign_file_url
        from tests.runtime.conftest import SECRET

        expired = sign_file_url(api.url, body["key"], SECRET, ttl=-10)
        assert httpx.get(expired).status_code == 410
        assert httpx.get(signed).status_code == 200

    def test_files_by_key_with_ranges(self, api):
        data = mp4_bytes(10_000)
        key = upload(api, "video", data, "v.mp4").json()["key"]
        full = api.client.get(f"/api/files/{key}", headers=api.auth)
        assert full.content == data
        assert full.headers["accept-ranges"] == "bytes"
        tail = api.client.get(f"/api/files/{key}", headers=api.auth | {"Range": "bytes=-100"})
        assert (tail.status_code, tail.content) == (206, data[-100:])
        unsatisfiable = api.client.get(
            f"/api/files/{key}", headers=api.auth | {"Range": f"bytes={len(data)}-"}
        )
        assert unsatisfiable.status_code == 416
        assert api.client.get("/api/files/videos/none.mp4", headers=api.auth).status_code == 404

    def test_move_to_permanent_then_delete(self, api):
        body = upload(api, "image", image_bytes(), "t.png", is_temp=True).json()
        moved = api.client.post(f"/api/upload/{body['id']}/move-to-permanent", headers=api.auth)
        assert moved.status_code == 200
        assert moved.json()["key"] == body["key"].removeprefix("temp/")
        assert moved.json()["is_temp"] is False
        assert not local_path(api, body["key"]).exists()
        assert local_path(api, moved.json()["key"]).exists()
        again = api.client.post(f"/api/upload/{body['id']}/move-to-permanent", headers=api.auth)
        assert again.status_code == 409
        assert (
            api.client.get(f"/api/upload/{body['id']}", headers=api.auth).json()["key"]
            == moved.json()["key"]
        )
        assert api.client.delete(f"/api/upload/{body['id']}", headers=api.auth).status_code == 204
        assert not local_path(api, moved.json()["key"]).exists()
        gone = api.client.get(f"/api/upload/{body['id']}", headers=api.auth)
        assert (gone.status_code, gone.json()["error"]) == (404, "not_found")

    def test_list_is_paginated(self, api):
        ids = [
            upload(api, "image", image_bytes(size=(n + 1, 2)), f"{n}.png").json()["id"]
            for n in range(7)
        ]
        upload(api, "video", mp4_bytes(), "v.mp4", is_temp=True)
        seen, cursor = [], None
        while True:
            params = {"prefix": "images/", "limit": 3} | ({"cursor": cursor} if cursor else {})
            page = api.client.get("/api/upload", params=params, headers=api.auth).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == ids
        temp = api.client.get("/api/upload", params={"is_temp": "true"}, headers=api.auth).json()
        assert [i["key"][:12] for i in temp["items"]] == ["temp/videos/"]
        bad = api.client.get("/api/upload", params={"prefix": "../"}, headers=api.auth)
        assert bad.status_code == 400

    def test_cleanup_temp_and_stats(self, api):
        upload(api, "image", image_bytes(), "keep.png")
        temp = upload(api, "image", image_bytes(), "old.png", is_temp=True).json()
        stats = api.client.get("/api/upload/stats/overview", headers=api.auth).json()
        assert (stats["objects"], stats["temp_objects"]) == (2, 1)
        none = api.client.post(
            "/api/upload/cleanup-temp", params={"hours": 1}, headers=api.auth
        ).json()
        assert none["deleted_objects"] == 0
        time.sleep(1.1)
        done = api.client.post(
            "/api/upload/cleanup-temp", params={"hours": 0.0001}, headers=api.auth
        ).json()
        assert done["deleted_objects"] == 1
        assert not local_path(api, temp["key"]).exists()
        stats = api.client.get("/api/upload/stats/overview", headers=api.auth).json()
        assert (stats["objects"], stats["temp_objects"]) == (1, 0)


class TestMultipart:
    def test_local_multipart_upload(self, api):
        data = mp4_bytes(11 * 1024 * 1024)
        started = api.client.post(
            "/api/upload/multipart",
            json={
                "kind": "video",
                "size": len(data),
                "filename": "long.mp4",
                "content_type": "video/mp4",
            },
            headers=api.auth,
        )
        assert started.status_code == 201, started.text
        session = started.json()
        part_size = session["part_size"]
        assert len(session["part_urls"]) == -(-len(data) // part_size)
        for number, url in enumerate(session["part_urls"]):
            piece = data[number * part_size : (number + 1) * part_size]
            assert httpx.put(url, content=piece).status_code == 200
        # Resumable: sending a part again replaces it.
        assert httpx.put(session["part_urls"][0], content=data[:part_size]).status_code == 200
        done = api.client.post(f"/api/upload/{session['id']}/complete", headers=api.auth)
        assert done.status_code == 200, done.text
        assert done.json()["sha256"] == hashlib.sha256(data).hexdigest()
        assert local_path(api, done.json()["key"]).read_bytes() == data

    def test_part_urls_are_signed_and_abort_cleans_up(self, api):
        started = api.client.post(
            "/api/upload/multipart", json={"kind": "video", "size": 100}, headers=api.auth
        ).json()
        url = started["part_urls"][0]
        assert httpx.put(url.replace("signature=", "signature=x"), content=b"x").status_code == 403
        assert (
            api.client.post(f"/api/upload/{started['id']}/complete", headers=api.auth).status_code
            == 409
        )
        assert (
            api.client.delete(f"/api/upload/{started['id']}", headers=api.auth).status_code == 204
        )
        assert not list((api.root / ".stowage-tmp").glob("mpu-*"))
        assert (
            api.client.post(f"/api/upload/{started['id']}/complete", headers=api.auth).status_code
            == 404
        )

    def test_wrong_type_in_parts_is_415_and_removed(self, api):
        started = api.client.post(
            "/api/upload/multipart", json={"kind": "image", "size": 5}, headers=api.auth
        ).json()
        assert httpx.put(started["part_urls"][0], content=b"hello").status_code == 200
        done = api.client.post(f"/api/upload/{started['id']}/complete", headers=api.auth)
        assert done.status_code == 415
        assert not local_path(api, started["key"]).exists()


class TestS3Mode:
    @pytest.fixture
    def s3_api(self, serve, bucket, tmp_path):
        return serve(
            STOWAGE_STORAGE_MODE="s3", STOWAGE_S3_BUCKET=bucket, STOWAGE_S3_PREFIX="media/"
        )

    def test_upload_download_and_presigned_multipart(self, s3_api, bucket, moto_url):
        import boto3

        data = image_bytes("PNG")
        body = upload(s3_api, "image", data, "s3.png").json()
        assert body["backend"] == "s3"
        s3 = boto3.client("s3", endpoint_url=moto_url)
        stored = s3.get_object(Bucket=bucket, Key="media/" + body["key"])
        assert stored["Body"].read() == data
        assert stored["Metadata"]["sha256"] == body["sha256"]
        location = s3_api.client.get(
            f"/api/upload/{body['id']}/download", headers=s3_api.auth
        ).headers["location"]
        assert "X-Amz-Signature=" in location
        assert httpx.get(location).content == data

        video = mp4_bytes(6 * 1024 * 1024)
        session = s3_api.client.post(
            "/api/upload/multipart",
            json={"kind": "video", "size": len(video), "content_type": "video/mp4"},
            headers=s3_api.auth,
        ).json()
        assert session["part_urls"][0].startswith(moto_url)  # straight to S3
        size = session["part_size"]
        for number, url in enumerate(session["part_urls"]):
            piece = video[number * size : (number + 1) * size]
            response = httpx.put(
                url, content=piece, headers={"Content-Type": "application/octet-stream"}
            )
            assert response.status_code == 200
        done = s3_api.client.post(f"/api/upload/{session['id']}/complete", headers=s3_api.auth)
        assert done.status_code == 200, done.text
        assert done.json()["sha256"] == hashlib.sha256(video).hexdigest()

    def test_dynamodb_catalog(self, serve, bucket, dynamodb_table):
        api = serve(
            STOWAGE_STORAGE_MODE="s3",
            STOWAGE_S3_BUCKET=bucket,
            STOWAGE_CATALOG_URL=f"dynamodb://{dynamodb_table}",
        )
        body = upload(api, "image", image_bytes(), "d.png", is_temp=True).json()
        assert (
            api.client.get(f"/api/upload/{body['id']}", headers=api.auth).json()["key"]
            == body["key"]
        )
        moved = api.client.post(f"/api/upload/{body['id']}/move-to-permanent", headers=api.auth)
        assert moved.status_code == 200


def test_hybrid_mode_splits_writes_and_reads_from_the_catalog(serve, bucket):
    api = serve(
        STOWAGE_STORAGE_MODE="hybrid", STOWAGE_S3_BUCKET=bucket, STOWAGE_HYBRID_S3_PERCENT="50"
    )
    bodies = [
        upload(api, "image", image_bytes(size=(n + 1, 3)), f"{n}.png").json() for n in range(20)
    ]
    backends = {b["backend"] for b in bodies}
    assert backends == {"local", "s3"}
    for body in bodies:
        content = api.client.get(f"/api/files/{body['key']}", headers=api.auth)
        assert hashlib.sha256(content.content).hexdigest() == body["sha256"]


def test_openapi_document_lists_the_contract(api):
    spec = api.client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/upload/video",
        "/api/upload/image",
        "/api/upload/transcript-file",
        "/api/upload/transcript-text",
        "/api/upload/multipart",
        "/api/upload/{upload_id}",
        "/api/upload/{upload_id}/download",
        "/api/upload/{upload_id}/move-to-permanent",
        "/api/upload/{upload_id}/complete",
        "/api/upload",
        "/api/upload/cleanup-temp",
        "/api/upload/stats/overview",
        "/api/files/{key}",
        "/healthz",
        "/metrics",
    ):
        assert path in paths, path
    assert "multipart/form-data" in paths["/api/upload/image"]["post"]["requestBody"]["content"]


def test_metrics_count_uploads_and_failures(api):
    upload(api, "image", image_bytes(), "m.png")
    upload(api, "image", b"nope", "m.png")
    text = api.client.get("/metrics").text
    assert 'stowage_uploads_total{kind="image"} 1.0' in text
    assert 'stowage_request_failures_total{code="unsupported_type"} 1.0' in text
    assert "stowage_request_duration_seconds_bucket" in text


def test_logs_are_json_without_secrets(api, tmp_path):
    body = upload(api, "image", image_bytes(), "l.png").json()
    api.client.get(f"/api/upload/{body['id']}/download", headers=api.auth)
    httpx.get(body["download_url"])
    time.sleep(0.3)
    import json

    log = next(tmp_path.glob("serve-*.log")).read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(line.get("route") == "/api/upload/{upload_id}/download" for line in lines)
    assert TOKEN not in log
    assert "md5=" not in log
    assert os.environ.get("STOWAGE_SIGNING_SECRET", "absent") not in log


def test_method_not_allowed_names_every_method_of_the_path(api):
    response = api.client.request("PATCH", "/api/upload/abc", headers=api.auth)
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert set(response.headers["allow"].split(", ")) == {"GET", "DELETE"}


def test_json_bodies_are_taken_as_documented(api):
    for body in (
        {"kind": "video", "size": 10, "is_temp": 0},
        {"kind": "video", "size": "10"},
        {"kind": "video", "size": 10.0},
    ):
        response = api.client.post("/api/upload/multipart", json=body, headers=api.auth)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"] == "bad_request"
    text = api.client.post("/api/upload/transcript-text", json={"content": 5}, headers=api.auth)
    assert text.status_code == 400
