"""The end-to-end fixture: a booted Debian host converged twice by the repository's playbook."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest

from tests.e2e.host import Host, booted_host
from tests.e2e.playbook import Run, converge, write_inventory
from tests.helpers import free_port

TOKEN = "e2e-api-token-0123456789abcdef"
HOST_KEY = {
    "aws_access_key_id": "AKIAE2EHOSTKEY000001",
    "aws_secret_access_key": "e2e/host/Secret+Key0123456789abcdefghij",
}


class AlertSink:
    """An HTTP endpoint on loopback that records the JSON bodies POSTed to it (disk alerts)."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sink.received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"

    def __enter__(self) -> AlertSink:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Site:
    host: Host
    base: str
    inventory: Path
    first: Run
    second: Run | None
    alerts: AlertSink
    uploads: list[dict] = field(default_factory=list)

    def env_file(self) -> dict[str, str]:
        lines = self.host.ssh("cat /etc/stowage/stowage.env").stdout.splitlines()
        return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))

    def secret(self) -> str:
        return self.env_file()["STOWAGE_SIGNING_SECRET"]


@pytest.fixture(scope="module")
def host_credentials_secret(aws_env, moto_url) -> str:
    """The storage stack's secret with the host's S3 key, in Secrets Manager (moto)."""
    secrets = boto3.client("secretsmanager", endpoint_url=moto_url, region_name="eu-west-1")
    arn = secrets.create_secret(
        Name=f"stowage-e2e-host-{uuid.uuid4().hex[:8]}", SecretString=json.dumps(HOST_KEY)
    )["ARN"]
    # The playbook's lookup runs on the controller: this process's environment.
    os.environ["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = moto_url
    yield arn
    os.environ.pop("AWS_ENDPOINT_URL_SECRETS_MANAGER", None)
    secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory, host_credentials_secret) -> Site:
    work = tmp_path_factory.mktemp("e2e")
    with contextlib.ExitStack() as stack:
        alerts = stack.enter_context(AlertSink())
        host = stack.enter_context(booted_host(work))
        inventory = work / "inventory.yml"
        base = write_inventory(
            host,
            inventory,
            runtime_api_tokens=[TOKEN],
            runtime_disk_alert_webhook=alerts.url,
            runtime_s3_credentials_secret_arn=host_credentials_secret,
        )
        first = converge(inventory)
        second = converge(inventory) if first.returncode == 0 else None
        yield Site(host, base, inventory, first, second, alerts)
