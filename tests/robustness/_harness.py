"""Run a command as a user would and check the error contract.

The contract (issue 13): a failing command prints one line ``error: ...`` on stderr, no
traceback, exits 1 (data/environment) or 2 (usage), and leaves the dataset byte-identical.
:func:`run_killed` and :func:`counted_writes` kill a command at each of its writes in turn.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mfcurate.cli import main


@dataclass
class Result:
    """What a command did."""

    code: int
    out: str
    err: str


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> Result:
    """Run ``mfcurate ARGV`` in-process through the console entry point."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return Result(code, out, err)


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (relative path -> digest)."""
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def assert_one_line_error(res: Result, code: int, *needles: str) -> None:
    """The error contract: exit code, one ``error:`` line (the last), no traceback, needles."""
    assert res.code == code, (res.code, res.err, res.out)
    assert "Traceback" not in res.err + res.out
    lines = [ln for ln in res.err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], res.err  # notices may come first
    for n in needles:
        assert n in errors[0], (n, errors[0])


#: ``python -c KILL_CHILD NTH ARGV...``: ``mfcurate ARGV`` killing itself with SIGKILL at its
#: NTH ``os.replace`` (the last step of every atomic file write and folder swap).
KILL_CHILD = r"""
import os, signal, sys
nth, real, calls = int(sys.argv[1]), os.replace, [0]

def dying(*args, **kwargs):
    calls[0] += 1
    if calls[0] == nth:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)

os.replace = dying
from mfcurate.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run_killed(nth: int, *argv: str | Path, timeout: float = 120
               ) -> subprocess.CompletedProcess[str]:
    """Run ``mfcurate ARGV`` in a child that SIGKILLs itself at its ``nth`` ``os.replace``.

    The return code is ``-SIGKILL`` when it died, that of the command when it finished first.
    """
    return subprocess.run([sys.executable, "-c", KILL_CHILD, str(nth), *map(str, argv)],
                          capture_output=True, text=True, timeout=timeout)


@contextmanager
def counted_writes() -> Iterator[Any]:
    """``with counted_writes() as w:`` ... ``w.call_count``: this process's ``os.replace`` calls.

    With :func:`run_killed`, tells how many write points a command has (kill at each in turn).
    """
    import os
    from unittest import mock

    with mock.patch("os.replace", wraps=os.replace) as w:
        yield w
