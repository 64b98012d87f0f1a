"""Shared helpers of the benchmarks: timing and peak memory of a child process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL = (REPO.parent / "shared" / "data" / "real").resolve()


_PEAK = """
def _peak_mb():
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""


def run_child(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it must print one JSON line last.

    The child's own peak RSS is added as ``peak_rss_mb``: ``VmHWM`` of ``/proc/self/status``
    (the high-water mark of the child's address space).  Not ``ru_maxrss``: Linux carries
    the parent's peak into a child across fork/vfork + exec, so a parent that once held a
    large slide would inflate every child's figure.  ``ru_maxrss`` is the fallback off Linux.
    """
    wrapper = code + "\nimport json as _j\n" + _PEAK + \
        "print(_j.dumps({**RESULT, 'peak_rss_mb': _peak_mb()}))\n"
    out = subprocess.run([sys.executable, "-c", wrapper], cwd=REPO, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
