"""The peer design the motivating apps used: a FastAPI route answering FileResponse."""

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse

ROOT = Path(os.environ["BENCH_ROOT"])
app = FastAPI()


@app.get("/files/{key:path}")
def serve_file(key: str) -> FileResponse:
    return FileResponse(ROOT / key)
