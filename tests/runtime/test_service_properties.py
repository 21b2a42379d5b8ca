"""Property-based layer over the service: random sequences of what clients and operators do
(upload; multipart start, part, complete, retry, abort, a completion that dies before
cataloguing; move to permanent; delete; cleanup; a copy left on the other side by a
copy-mode migration) on local disk, S3 (moto's server) and hybrid.

Invariant after every step: the catalog holds exactly the uploads the model committed and
the backend exactly their keys; each object's bytes are the model's and hash to the
recorded SHA-256; its Content-Type (in the catalog and on the object) and its key's
extension are what its bytes sniff as; nothing deleted can be read again.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

import boto3
import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from stowage.errors import BadRequest, Conflict, NotFound, UnsupportedType
from stowage.keys import VARIANTS_PREFIX
from stowage.service import Spooled, Stowage
from stowage.settings import Settings
from stowage.sniff import ALLOWED, DEFAULT_TYPE, SNIFF_BYTES, sniff
from tests.runtime.conftest import SECRET, image_bytes, mp4_bytes

WEBM = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm" + b"\x00" * 64
HTML = b"<html><script>alert(1)</script></html>"
BY_KIND = {
    "video": st.one_of(st.integers(0, 3000).map(mp4_bytes), st.just(WEBM)),
    "image": st.sampled_from(
        [
            image_bytes("PNG", size=(5, 4)),
            image_bytes("JPEG", size=(6, 3)),
            image_bytes("GIF", size=(3, 3)),
        ]
    ),
    "transcript": st.sampled_from(
        [HTML, b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n", b'{"words": []}', b"plain words\n"]
    ),
}
KINDS = st.sampled_from(sorted(ALLOWED))
OTHER_DECLARED = st.sampled_from([None, "video/webm", "image/png", "text/html"])


@st.composite
def uploads(draw):
    """(kind, bytes): mostly bytes the kind allows, sometimes another kind's (415)."""
    kind = draw(KINDS)
    source = kind if draw(st.integers(0, 3)) else draw(KINDS)
    return kind, draw(BY_KIND[source])


@st.composite
def declared_uploads(draw):
    """(kind, declared type, bytes): mostly declaring what the bytes are."""
    kind, data = draw(uploads())
    declared = sniff(data[:SNIFF_BYTES]) if draw(st.integers(0, 3)) else draw(OTHER_DECLARED)
    return kind, declared, data


def expected_type(kind: str, data: bytes) -> str | None:
    found = sniff(data[:SNIFF_BYTES])
    return found if found in ALLOWED[kind] else None


class ServiceMachine(RuleBasedStateMachine):
    """Subclassed per storage mode with ``make_settings``."""

    make_settings = staticmethod(lambda root: Settings())

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="stowage-machine-"))
        self.service = Stowage.from_settings(self.make_settings(self.root))
        self.committed: dict[str, bytes] = {}  # upload id -> bytes
        self.sessions: dict[str, dict] = {}  # open multipart uploads
        self.gone: set[str] = set()  # keys that were deleted or moved away

    def teardown(self) -> None:
        self.service.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def _record(self, upload_id: str):
        return self.service.get(upload_id)

    # -- uploads -----------------------------------------------------------------------

    @rule(sent=uploads(), is_temp=st.booleans())
    def upload(self, sent, is_temp):
        kind, data = sent
        path = self.service.spool.spool_file()
        path.write_bytes(data)
        spooled = Spooled(path, hashlib.sha256(data).hexdigest(), len(data), data[:SNIFF_BYTES])
        try:
            record = self.service.store(kind, spooled, is_temp=is_temp, filename="x.html")
        except UnsupportedType:
            assert expected_type(kind, data) is None
            assert not path.exists()
            return
        assert expected_type(kind, data) == record.content_type
        self.committed[record.id] = data

    @rule(sent=declared_uploads(), is_temp=st.booleans())
    def start_multipart(self, sent, is_temp):
        kind, declared, data = sent
        try:
            session, urls = self.service.start_multipart(
                kind, size=len(data), filename="x.html", content_type=declared, is_temp=is_temp
            )
        except UnsupportedType:
            assert (declared or DEFAULT_TYPE[kind]) not in ALLOWED[kind]
            return
        assert len(urls) == 1
        self.sessions[session.id] = {"kind": kind, "data": data, "url": urls[0], "sent": False}
        self.sessions[session.id]["declared"] = session.content_type

    @rule(choice=st.data())
    def send_part(self, choice):
        if self.sessions:
            self._send(choice.draw(st.sampled_from(sorted(self.sessions))))

    def _send(self, upload_id):
        entry = self.sessions[upload_id]
        if entry["url"].startswith(self.service.settings.public_base_url):
            self.service.receive_part(upload_id, 1, io.BytesIO(entry["data"]))
        else:
            sent = httpx.put(
                entry["url"],
                content=entry["data"],
                headers={"Content-Type": "application/octet-stream"},
            )
            assert sent.status_code == 200, sent.text
        entry["sent"] = True

    @rule(choice=st.data(), die_first=st.booleans())
    def complete(self, choice, die_first):
        """Complete (or retry a completion); ``die_first``: a completion assembled the
        object and died before cataloguing it, and this one must finish the job."""
        known = sorted(self.sessions) + sorted(self.committed)
        if not known:
            return
        upload_id = choice.draw(st.sampled_from(known))
        if upload_id not in self.sessions:  # a retry of a committed upload: the same record
            record = self.service.complete_multipart(upload_id)
            assert record == self._record(upload_id)
            return
        self._complete(upload_id, die_first)

    def _complete(self, upload_id, die_first):
        entry = self.sessions[upload_id]
        if die_first and entry["sent"]:
            session = self.service.catalog.get_session(upload_id)
            self.service.backend.complete_multipart(
                session.key, session.handle, parts=1, content_type=session.content_type
            )
        try:
            record = self.service.complete_multipart(upload_id)
        except Conflict:
            assert not entry["sent"]
            return
        except (UnsupportedType, BadRequest):
            assert expected_type(entry["kind"], entry["data"]) != entry["declared"]
            del self.sessions[upload_id]
            return
        assert entry["sent"]
        assert expected_type(entry["kind"], entry["data"]) == entry["declared"]
        del self.sessions[upload_id]
        self.committed[record.id] = entry["data"]

    @rule(sent=declared_uploads(), is_temp=st.booleans(), die_first=st.booleans())
    def multipart_upload(self, sent, is_temp, die_first):
        """The whole multipart round trip in one step (the rules above interleave it)."""
        before = set(self.sessions)
        self.start_multipart(sent, is_temp)
        started = set(self.sessions) - before
        if not started:
            return
        (upload_id,) = started
        self._send(upload_id)
        self._complete(upload_id, die_first)

    @rule(choice=st.data())
    def abort(self, choice):
        if not self.sessions:
            return
        upload_id = choice.draw(st.sampled_from(sorted(self.sessions)))
        self.service.abort_multipart(upload_id)
        del self.sessions[upload_id]

    # -- changes -----------------------------------------------------------------------

    @rule(choice=st.data())
    def move_to_permanent(self, choice):
        if not self.committed:
            return
        upload_id = choice.draw(st.sampled_from(sorted(self.committed)))
        before = self._record(upload_id)
        try:
            moved = self.service.move_to_permanent(upload_id)
        except Conflict:
            assert not before.is_temp
            return
        assert before.is_temp
        assert not moved.is_temp
        self.gone.add(before.key)

    @rule(choice=st.data())
    def delete(self, choice):
        if not self.committed:
            return
        upload_id = choice.draw(st.sampled_from(sorted(self.committed)))
        record = self.service.delete(upload_id)
        del self.committed[upload_id]
        self.gone.add(record.key)
        with pytest.raises(NotFound):
            self.service.delete(upload_id)

    @rule()
    def cleanup(self):
        records = [self._record(i) for i in self.committed]
        temp = {r.id: r.key for r in records if r.is_temp}
        self.service.cleanup(older_than=timedelta(0))
        for upload_id in list(self.committed):
            record = self.service.catalog.find(upload_id)
            assert (record is None) == (upload_id in temp), upload_id
            if record is None:
                del self.committed[upload_id]
                self.gone.add(temp[upload_id])

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def catalog_and_storage_agree(self):
        rows = {r.id: r for r in self.service.catalog.all()}
        assert sorted(rows) == sorted(self.committed)
        stored = sorted(
            info.key
            for info in self.service.backend.list("")
            if not info.key.startswith(VARIANTS_PREFIX)
        )
        assert stored == sorted(r.key for r in rows.values())
        for upload_id, record in rows.items():
            data = self.service.backend.read_all(record.key)
            assert data == self.committed[upload_id]
            assert hashlib.sha256(data).hexdigest() == record.sha256
            kind = {"videos": "video", "images": "image", "transcripts": "transcript"}[
                record.key.removeprefix("temp/").split("/")[0]
            ]
            assert record.content_type == expected_type(kind, data)
            assert record.key.endswith(record.id + ALLOWED[kind][record.content_type])
            assert self.service.backend.head(record.key).content_type == record.content_type
        for key in self.gone - {r.key for r in rows.values()}:
            assert not self.service.backend.exists(key), f"{key} came back"


class HybridMachine(ServiceMachine):
    @rule(choice=st.data())
    def copy_to_the_other_side(self, choice):
        """What a copy-mode migration leaves: the object on both sides."""
        if not self.committed:
            return
        upload_id = choice.draw(st.sampled_from(sorted(self.committed)))
        record = self._record(upload_id)
        backend = self.service.backend
        other = backend.local if record.backend == "s3" else backend.s3
        other.put_stream(
            record.key, io.BytesIO(self.committed[upload_id]), content_type=record.content_type
        )


FAST = settings(
    max_examples=10,
    stateful_step_count=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def s3_settings(moto_url: str, mode: str):
    def make(root: Path) -> Settings:
        bucket = f"machine-{uuid.uuid4().hex[:12]}"
        s3 = boto3.client("s3", endpoint_url=moto_url)
        s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        return Settings(
            storage_mode=mode,
            local_root=root,
            s3_bucket=bucket,
            s3_prefix="media/",
            hybrid_s3_percent=50 if mode == "hybrid" else None,
            signing_secret=SECRET,
            multipart_part_size=5 * 1024 * 1024,
        )

    return make


def test_local_service_keeps_catalog_and_storage_in_agreement():
    class Local(ServiceMachine):
        make_settings = staticmethod(lambda root: Settings(local_root=root, signing_secret=SECRET))

    run_state_machine_as_test(Local, settings=FAST)


def test_s3_service_keeps_catalog_and_storage_in_agreement(aws_env, moto_url):
    class S3(ServiceMachine):
        make_settings = staticmethod(s3_settings(moto_url, "s3"))

    run_state_machine_as_test(S3, settings=FAST)


def test_hybrid_service_keeps_catalog_and_storage_in_agreement(aws_env, moto_url):
    class Hybrid(HybridMachine):
        make_settings = staticmethod(s3_settings(moto_url, "hybrid"))

    run_state_machine_as_test(Hybrid, settings=FAST)
