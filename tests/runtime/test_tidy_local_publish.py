"""Local multipart completion never replaces a committed object with other bytes.

Two `stowage serve` processes share one media root and catalog. The first is frozen
(SIGSTOP) while it assembles an upload (every part already open, so it will finish); the
client re-sends part 1 with other bytes and completes through the second, which commits;
then the first resumes with the bytes it had read before the re-send. Its rename used to
overwrite the committed object, leaving a row whose SHA-256 the bytes on disk no longer match.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.runtime.conftest import mp4_bytes, send_parts, start_multipart

PART = 32 * 1024 * 1024
PARTS = 2
ATTEMPTS = 5


def _spool_size(spool_dir: Path, pid: int) -> int | None:
    for entry in os.scandir(spool_dir):
        if entry.name.startswith(f"{pid}-") and entry.name.endswith(".part"):
            try:
                return entry.stat().st_size
            except FileNotFoundError:
                return None
    return None


def _freeze_in_last_part(first, spool_dir: Path, url: str, answers: list) -> bool:
    """POST the complete to ``first``; SIGSTOP it while it reads the last part (all parts
    open, part 1 read). ``False`` if it was too quick to catch (it is left running)."""

    def complete() -> None:
        with httpx.Client(timeout=120) as client:
            answers.append(client.post(url, headers=first.auth))

    threading.Thread(target=complete, daemon=True).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not answers:
        size = _spool_size(spool_dir, first.process.pid)
        if size is not None and (PARTS - 1) * PART < size < PARTS * PART - 1024 * 1024:
            os.kill(first.process.pid, signal.SIGSTOP)
            if _spool_size(spool_dir, first.process.pid) is not None:
                return True
            os.kill(first.process.pid, signal.SIGCONT)  # it had just finished
            return False
    return False


def _frozen_completion(first, spool_dir: Path) -> tuple[bytes, dict, list]:
    """Upload a video's parts to ``first`` and leave ``first`` frozen mid-completion."""
    for _ in range(ATTEMPTS):
        video = mp4_bytes(PARTS * PART - 32)
        session = start_multipart(first, "video", len(video), content_type="video/mp4").json()
        assert len(session["part_urls"]) == PARTS
        send_parts(session, video)
        url = f"{first.url}/api/upload/{session['id']}/complete"
        answers: list[httpx.Response] = []
        if _freeze_in_last_part(first, spool_dir, url, answers):
            return video, session, answers
        _wait(answers)
    pytest.fail(f"could not freeze a completion mid-assembly in {ATTEMPTS} attempts")


def _wait(answers: list) -> None:
    deadline = time.monotonic() + 60
    while not answers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert answers, "the frozen completion never answered"


def test_completion_that_read_a_re_sent_part_never_overwrites_the_committed_object(serve, tmp_path):
    root = tmp_path / "media"
    first = serve(root, STOWAGE_MULTIPART_PART_SIZE=str(PART))
    second = serve(root, STOWAGE_MULTIPART_PART_SIZE=str(PART))
    spool_dir = root / ".stowage-tmp"
    video, session, answers = _frozen_completion(first, spool_dir)
    path = f"/api/upload/{session['id']}/complete"

    try:
        # The client re-sends part 1 (other bytes, same length) and completes elsewhere.
        resent = bytearray(video[:PART])
        resent[-1] ^= 0xFF
        part_url = session["part_urls"][0].replace(first.url, second.url)
        put = httpx.put(
            part_url, content=bytes(resent), headers={"Content-Type": "application/octet-stream"}
        )
        assert put.status_code == 200, put.text
        committed = second.client.post(path, headers=second.auth)
        assert committed.status_code == 200, committed.text
        record = committed.json()
        expected = hashlib.sha256(bytes(resent) + video[PART:]).hexdigest()
        assert record["sha256"] == expected
    finally:
        os.kill(first.process.pid, signal.SIGCONT)

    _wait(answers)
    on_disk = (root / record["key"]).read_bytes()
    assert hashlib.sha256(on_disk).hexdigest() == record["sha256"], "committed object replaced"
    loser = answers[0]
    assert loser.status_code == 409, loser.text
    assert loser.json()["error"] == "conflict"
    served = second.client.get(f"/api/upload/{session['id']}", headers=second.auth).json()
    assert served["sha256"] == record["sha256"]
    assert not list(spool_dir.glob("*.part"))


def test_concurrent_completes_of_the_same_bytes_both_get_the_record(serve, tmp_path):
    """The loser of a race over identical parts finds the winner's object in place (no
    replace) and answers with the winner's record."""
    root = tmp_path / "media"
    first = serve(root, STOWAGE_MULTIPART_PART_SIZE=str(PART))
    second = serve(root, STOWAGE_MULTIPART_PART_SIZE=str(PART))
    spool_dir = root / ".stowage-tmp"
    video, session, answers = _frozen_completion(first, spool_dir)
    path = f"/api/upload/{session['id']}/complete"
    try:
        committed = second.client.post(path, headers=second.auth)
        assert committed.status_code == 200, committed.text
    finally:
        os.kill(first.process.pid, signal.SIGCONT)
    _wait(answers)
    assert answers[0].status_code == 200, answers[0].text
    assert answers[0].json()["sha256"] == committed.json()["sha256"]
    assert committed.json()["sha256"] == hashlib.sha256(video).hexdigest()
    on_disk = (root / committed.json()["key"]).read_bytes()
    assert hashlib.sha256(on_disk).hexdigest() == committed.json()["sha256"]
