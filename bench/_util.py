"""Shared helpers of the benchmarks: timing and peak memory of a child process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL = (REPO.parent / "shared" / "data" / "real").resolve()


def run_child(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it must print one JSON line last.

    The child's peak RSS (``ru_maxrss``) is added as ``peak_rss_mb``.
    """
    wrapper = code + "\nimport resource, json as _j\n" \
        "print(_j.dumps({**RESULT, 'peak_rss_mb': " \
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    out = subprocess.run([sys.executable, "-c", wrapper], cwd=REPO, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
