"""DynamoDB catalog, for a service on several hosts. The table comes from StorageStack;
its keys and indexes are described in docs/storage-design.md (access patterns)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.conditions import Attr, Key
from botocore.config import Config
from botocore.exceptions import ClientError

from stowage.catalog.base import (
    Catalog,
    MultipartSession,
    Record,
    Stats,
    decode_cursor,
    encode_cursor,
    session_from_json,
    session_to_json,
)
from stowage.errors import BadRequest, Conflict, NotFound
from stowage.images.focal import focal_text, parse_focal
from stowage.keys import KIND_PREFIX, PERMANENT_PREFIXES, TEMP_PREFIX, top_prefix

BY_PREFIX = "ByPrefix"
TEMP_BY_EXPIRY = "TempByExpiry"
SESSION = "mpu#"
CONTENDED_ATTEMPTS = 6
# Top-level prefixes in listing order, for listings that span all of them.
TOP_PREFIXES = (*PERMANENT_PREFIXES, *(TEMP_PREFIX + p for p in KIND_PREFIX.values()))


def _item(record: Record) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": record.id,
        "key": record.key,
        "prefix": top_prefix(record.key),
        "created": f"{record.created_at.isoformat()}#{record.id}",
        "size": record.size,
        "sha256": record.sha256,
        "content_type": record.content_type,
        "is_temp": record.is_temp,
        "backend": record.backend,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
    }
    if record.expires_at:
        item["expires_iso"] = record.expires_at.isoformat()
    if record.focal_point:
        item["focal"] = focal_text(record.focal_point)
    if record.is_temp:
        item["temp"] = "temp"
        if record.expires_at:
            item["expires_at"] = int(record.expires_at.timestamp())
    return item


def _record(item: dict[str, Any]) -> Record:
    expires = item.get("expires_iso")
    return Record(
        id=item["id"],
        key=item["key"],
        size=int(item["size"]),
        sha256=item["sha256"],
        content_type=item["content_type"],
        is_temp=bool(item["is_temp"]),
        backend=item["backend"],
        created_at=datetime.fromisoformat(item["created_at"]),
        updated_at=datetime.fromisoformat(item["updated_at"]),
        expires_at=datetime.fromisoformat(expires) if expires else None,
        focal_point=parse_focal(item.get("focal")),
    )


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in (
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
    )


class DynamoCatalog(Catalog):
    def __init__(self, table: str, *, endpoint_url: str | None = None, region: str | None = None):
        resource = boto3.resource(
            "dynamodb",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(retries={"max_attempts": 8, "mode": "adaptive"}),
        )
        self.table = resource.Table(table)
        self.client = resource.meta.client

    # Each key is also claimed by a guard item ``key#<key>`` in the same transaction, so two
    # rows can never hold one key (a GSI alone cannot enforce uniqueness).
    def _guard_put(self, item: dict, *, claim: bool) -> dict:
        guard = {"id": f"key#{item['key']}", "owner": item["id"]}
        if "expires_at" in item:  # a temp row's guard expires with it (TTL)
            guard["expires_at"] = item["expires_at"]
        put: dict = {"TableName": self.table.name, "Item": guard}
        if claim:
            put["ConditionExpression"] = "attribute_not_exists(id)"
        return {"Put": put}

    def _transact(self, actions: list[dict], record_id: str, *, missing=None) -> None:
        """Run ``actions``; a failed condition on the first one means ``missing`` (else the
        row changed under the caller), on any other a taken id or key: Conflict."""
        for attempt in range(CONTENDED_ATTEMPTS):
            reasons = self._try_transact(actions)
            if reasons is None:
                return
            # Another transaction on the same items was in flight: no verdict on ours yet.
            contended = "TransactionConflict" in reasons and "ConditionalCheckFailed" not in reasons
            if not contended or attempt + 1 == CONTENDED_ATTEMPTS:
                break
            time.sleep(0.02 * 2**attempt)
        if missing is not None and reasons[:1] == ["ConditionalCheckFailed"]:
            raise missing()
        if contended:
            raise Conflict(f"upload {record_id} is being changed by another request; try again")
        raise Conflict(f"catalog already holds id {record_id} or its key")

    def _try_transact(self, actions: list[dict]) -> list[str] | None:
        """``None`` on success, else the cancellation reason of each action."""
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            return [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
        return None

    def _row_changed(self, record_id: str) -> Exception:
        self.get(record_id)  # NotFound if the row is gone
        return Conflict(f"upload {record_id} was changed by another request")

    def add(self, record: Record) -> None:
        item = _item(record)
        put = {
            "TableName": self.table.name,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(id)",
        }
        self._transact([{"Put": put}, self._guard_put(item, claim=True)], record.id)

    def commit_session(self, record: Record) -> None:
        item = _item(record)
        end = {
            "TableName": self.table.name,
            "Key": {"id": SESSION + record.id},
            "ConditionExpression": "attribute_exists(id)",
        }
        put = {
            "TableName": self.table.name,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(id)",
        }
        self._transact(
            [{"Delete": end}, {"Put": put}, self._guard_put(item, claim=True)],
            record.id,
            missing=lambda: Conflict(f"multipart upload {record.id} was already ended"),
        )

    def get(self, record_id: str) -> Record:
        item = self.table.get_item(Key={"id": record_id}, ConsistentRead=True).get("Item")
        if not item or "key" not in item or record_id.startswith(("key#", SESSION)):
            raise NotFound(f"no upload with id {record_id}")
        return _record(item)

    def get_by_key(self, key: str) -> Record | None:
        guard = self.table.get_item(Key={"id": f"key#{key}"}, ConsistentRead=True).get("Item")
        if not guard:
            return None
        try:
            return self.get(guard["owner"])
        except NotFound:
            return None

    @staticmethod
    def _as_seen(old_key: str) -> dict:
        return {
            "ConditionExpression": "#k = :seen",
            "ExpressionAttributeNames": {"#k": "key"},
            "ExpressionAttributeValues": {":seen": old_key},
        }

    def update(self, record: Record, *, expected_key: str | None = None) -> None:
        old_key = expected_key or self.get(record.id).key
        item = _item(record)
        put = {"TableName": self.table.name, "Item": item, **self._as_seen(old_key)}
        actions = [{"Put": put}, self._guard_put(item, claim=old_key != record.key)]
        if old_key != record.key:
            actions.append(
                {"Delete": {"TableName": self.table.name, "Key": {"id": f"key#{old_key}"}}}
            )
        self._transact(actions, record.id, missing=lambda: self._row_changed(record.id))

    def delete(self, record_id: str, *, expected_key: str | None = None) -> None:
        key = expected_key or self.get(record_id).key
        row = {"TableName": self.table.name, "Key": {"id": record_id}, **self._as_seen(key)}
        guard = {"TableName": self.table.name, "Key": {"id": f"key#{key}"}}
        self._transact(
            [{"Delete": row}, {"Delete": guard}],
            record_id,
            missing=lambda: self._row_changed(record_id),
        )

    def list(self, *, prefix="", is_temp=None, limit=100, cursor=None):
        # Position: index into the top prefixes this listing spans, and DynamoDB's key.
        tops = [p for p in TOP_PREFIXES if p.startswith(prefix) or prefix.startswith(p)]
        index, start_key = _position(cursor, tops) if cursor else (0, None)
        records: list[Record] = []
        while index < len(tops) and len(records) < limit:
            condition = Key("prefix").eq(tops[index])
            args: dict[str, Any] = {
                "IndexName": BY_PREFIX,
                "KeyConditionExpression": condition,
                "Limit": limit - len(records),
            }
            filters = []
            if len(prefix) > len(tops[index]):
                filters.append(Attr("key").begins_with(prefix))
            if is_temp is not None:
                filters.append(Attr("is_temp").eq(is_temp))
            if filters:
                expression = filters[0]
                for extra in filters[1:]:
                    expression &= extra
                args["FilterExpression"] = expression
            if start_key:
                args["ExclusiveStartKey"] = start_key
            page = self.table.query(**args)
            records += [_record(item) for item in page.get("Items", [])]
            start_key = page.get("LastEvaluatedKey")
            if not start_key:
                index, start_key = index + 1, None
        more = index < len(tops)
        return records, encode_cursor([index, _plain(start_key)]) if more else None

    def temp_created_before(self, cutoff: datetime) -> Iterator[Record]:
        # The sparse TempByExpiry index holds only temp rows; created_at filters precisely.
        args: dict[str, Any] = {
            "IndexName": TEMP_BY_EXPIRY,
            "KeyConditionExpression": Key("temp").eq("temp"),
        }
        while True:
            page = self.table.query(**args)
            for keys in page.get("Items", []):
                try:
                    record = self.get(keys["id"])
                except NotFound:
                    continue
                if record.created_at < cutoff:
                    yield record
            if "LastEvaluatedKey" not in page:
                return
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _scan(self, **args) -> Iterator[dict]:
        while True:
            page = self.table.scan(**args)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def all(self) -> Iterator[Record]:
        items = list(self._scan(FilterExpression=Attr("key").exists() & Attr("sha256").exists()))
        yield from sorted((_record(i) for i in items), key=lambda r: r.key)

    def stats(self) -> Stats:
        totals = {"objects": 0, "bytes": 0, "temp_objects": 0, "temp_bytes": 0}
        by_prefix: dict[str, dict[str, int]] = {}
        by_backend: dict[str, dict[str, int]] = {}
        for item in self._scan(
            FilterExpression=Attr("sha256").exists(),
            ProjectionExpression="#p, #s, is_temp, backend",
            ExpressionAttributeNames={"#p": "prefix", "#s": "size"},
        ):
            size = int(item["size"])
            totals["objects"] += 1
            totals["bytes"] += size
            if item["is_temp"]:
                totals["temp_objects"] += 1
                totals["temp_bytes"] += size
            for group, name in ((by_prefix, item["prefix"]), (by_backend, item["backend"])):
                entry = group.setdefault(name, {"objects": 0, "bytes": 0})
                entry["objects"] += 1
                entry["bytes"] += size
        return Stats(**totals, by_prefix=dict(sorted(by_prefix.items())), by_backend=by_backend)

    def add_session(self, session: MultipartSession) -> None:
        try:
            self.table.put_item(
                Item={"id": SESSION + session.id, "body": json.dumps(session_to_json(session))},
                ConditionExpression="attribute_not_exists(id)",
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                raise Conflict(f"multipart upload {session.id} exists") from None
            raise

    def get_session(self, session_id: str) -> MultipartSession:
        item = self.table.get_item(Key={"id": SESSION + session_id}, ConsistentRead=True).get(
            "Item"
        )
        if not item:
            raise NotFound(f"no multipart upload with id {session_id}")
        return session_from_json(json.loads(item["body"]))

    def delete_session(self, session_id: str) -> None:
        try:
            self.table.delete_item(
                Key={"id": SESSION + session_id}, ConditionExpression="attribute_exists(id)"
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                raise NotFound(f"no multipart upload with id {session_id}") from None
            raise

    def sessions(self) -> Iterator[MultipartSession]:
        for item in self._scan(FilterExpression=Attr("id").begins_with(SESSION)):
            yield session_from_json(json.loads(item["body"]))


def _position(cursor: str, tops: list[str]) -> tuple[int, dict[str, str] | None]:
    """A list cursor's (index into ``tops``, DynamoDB start key), each checked: DynamoDB
    would answer a foreign start key with a ValidationException, a 5xx to the client."""
    index, start_key = decode_cursor(cursor, int, (dict, type(None)))
    if not 0 <= index <= len(tops):
        raise BadRequest("malformed cursor")
    if start_key is not None and not (
        index < len(tops)
        and set(start_key) == {"id", "prefix", "created"}
        and all(isinstance(v, str) and v for v in start_key.values())
        and start_key["prefix"] == tops[index]
    ):
        raise BadRequest("malformed cursor")
    return index, start_key


def _plain(value: Any) -> Any:
    """DynamoDB keys carry Decimals; cursors are JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Decimal):
        return int(value)
    return value
