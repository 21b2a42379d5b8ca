"""Whether a process still runs: spool files and migration runs are named after (or record)
the process writing them, and only a dead writer's leftovers are debris."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
