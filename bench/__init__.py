"""Benchmarks against named peers; results in docs/benchmarks.md. Run from the repository
root as modules (``python -m bench.serve``) so they share the tests' helpers."""

import os
import sys
from pathlib import Path

# jsii (imported through the tests' helpers) runs `node`: take the virtualenv's Node 24.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
