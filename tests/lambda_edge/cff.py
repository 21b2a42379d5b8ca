"""Run the generated CloudFront Function under Node with CloudFront Function events."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from stacks.config import load_config
from stacks.edge_config import cloudfront_function_code

NODE = Path(sys.executable).with_name("node")
HARNESS = """
const fs = require('fs');
const code = fs.readFileSync(process.argv[2], 'utf8');
const handler = new Function(code + '\\nreturn handler;')();
const events = JSON.parse(fs.readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(events.map((e) => handler(e))));
"""


def viewer_event(
    uri: str, query: dict[str, str] | None = None, headers: dict | None = None
) -> dict:
    """A viewer-request event; ``headers`` maps lower-case names to ``{"value": ...}``."""
    return {
        "version": "1.0",
        "context": {"eventType": "viewer-request", "distributionId": "EDFDVBD6EXAMPLE"},
        "viewer": {"ip": "198.51.100.11"},
        "request": {
            "method": "GET",
            "uri": uri,
            "querystring": {k: {"value": v} for k, v in (query or {}).items()},
            "headers": headers or {},
            "cookies": {},
        },
    }


def function_runner(directory: Path, code: str | None = None) -> Callable[[list[dict]], list]:
    """Answers of the function (the example config's, unless ``code`` is given) to events."""
    function = directory / "function.js"
    function.write_text(code or cloudfront_function_code(load_config("example").cdn))
    harness = directory / "harness.js"
    harness.write_text(HARNESS)

    def invoke(events: list[dict]) -> list[dict]:
        result = subprocess.run(
            [str(NODE), str(harness), str(function)],
            input=json.dumps(events),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return json.loads(result.stdout)

    return invoke
