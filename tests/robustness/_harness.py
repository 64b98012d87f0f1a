"""Run a command as a user would and check the error contract.

The contract (issue 13): a failing command prints one line ``error: ...`` on stderr, no
traceback, exits 1 (data/environment) or 2 (usage), and leaves the dataset byte-identical.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

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
