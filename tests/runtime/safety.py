"""What the service's data-safety tests check after every scenario: the catalog and the
backend agree, and each object's bytes hash to its row."""

from __future__ import annotations

import hashlib
import threading

import boto3
import httpx


def stored_keys(api) -> list[str]:
    """Every object the backend holds (Stowage's own directories aside)."""
    if api.env.get("STOWAGE_STORAGE_MODE") == "s3":
        s3 = boto3.client("s3", endpoint_url=api.env["AWS_ENDPOINT_URL_S3"])
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=api.env["STOWAGE_S3_BUCKET"])
        return sorted(o["Key"].removeprefix("media/") for p in pages for o in p.get("Contents", []))
    return sorted(
        str(p.relative_to(api.root))
        for p in api.root.rglob("*")
        if p.is_file() and not str(p.relative_to(api.root)).startswith(".stowage")
    )


def catalogued(api) -> list[dict]:
    return api.client.get("/api/upload", params={"limit": 1000}, headers=api.auth).json()["items"]


def together(calls) -> list[httpx.Response]:
    """Run every call at the same moment, each in its own thread with its own connection."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        with httpx.Client(timeout=120) as client:
            barrier.wait()
            try:
                results[index] = call(client)
            except httpx.HTTPError as exc:  # a failed request is a finding, not a crash
                results[index] = exc

    threads = [threading.Thread(target=run, args=(n, c)) for n, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def assert_consistent(api, expected: dict[str, bytes]) -> None:
    """The catalog and the backend agree, and every object's bytes hash to its row."""
    rows = catalogued(api)
    assert sorted(r["key"] for r in rows) == stored_keys(api)
    assert sorted(r["id"] for r in rows) == sorted(expected)
    for row in rows:
        content = api.client.get(f"/api/files/{row['key']}", headers=api.auth).content
        assert hashlib.sha256(content).hexdigest() == row["sha256"]
        assert content == expected[row["id"]]
