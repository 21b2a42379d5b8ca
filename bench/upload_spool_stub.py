"""The service's half of design (b), at its cheapest, for bench/upload: Nginx has written the
body to a file under the spool directory and passes its path in ``X-Body-File``; this takes
the file (opened without following links, only inside the spool directory), hashes it,
fsyncs it and links it into place. No catalog, no sniffing: a ceiling for design (b).

Usage (started by bench/upload): python -m bench.upload_spool_stub PORT SPOOL_DIR DEST_DIR
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

READ_BYTES = 8 * 1024 * 1024


def take(path: str, spool: Path, dest: Path) -> tuple[str, int]:
    if Path(path).parent != spool:
        raise PermissionError(f"{path} is not in the spool directory")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        sha, size = hashlib.sha256(), 0
        buffer = bytearray(READ_BYTES)
        view = memoryview(buffer)
        while count := os.readv(fd, [buffer]):
            sha.update(view[:count])
            size += count
        os.fsync(fd)
        target = dest / f"{sha.hexdigest()}.mp4"
        os.link(path, target, follow_symlinks=False)
        opened, linked = os.fstat(fd), os.lstat(target)
        if (opened.st_dev, opened.st_ino) != (linked.st_dev, linked.st_ino):
            target.unlink()
            raise PermissionError(f"{path} was replaced while it was read")
        dir_fd = os.open(dest, os.O_RDONLY)
        os.fsync(dir_fd)
        os.close(dir_fd)
    finally:
        os.close(fd)
    return sha.hexdigest(), size


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        sha256, size = take(self.headers["X-Body-File"], SPOOL, DEST)
        body = json.dumps({"sha256": sha256, "size": size}).encode()
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    PORT, SPOOL, DEST = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
