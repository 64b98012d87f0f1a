"""``publish --dry-run`` killed (SIGKILL) while building: the rerun leaves no temporary behind.

A child process rebuilds a package over an existing one and kills itself with SIGKILL at a
chosen ``os.replace``: midway through writing the new package (the build folder is left
beside ``OUT``), or between the two renames that swap it in (``OUT`` moved aside, not yet
replaced).  The package a user had is never damaged: it stays in place, or the rerun puts it
back; the rerun then removes every hidden build or moved-aside folder, keeps the deposit state
and reports the package as reused.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mfcurate.publish.package import build_package, verify_package
from tests.publish.synthetic_dataset import build_dataset
from tests.robustness._harness import tree_digest

CHILD = r"""
import os, signal, sys
from pathlib import Path
from mfcurate.cli import main

mode, ds, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
real = os.replace

def dying(src, dst, *args, **kwargs):
    if mode == "midway" or (mode == "swap" and Path(dst) == out):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst, *args, **kwargs)

os.replace = dying
sys.exit(main(["publish", ds, "--dry-run", "--out", str(out), "--rebuild"]))
"""


def _leftovers(out: Path) -> list[str]:
    hidden = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    return sorted(hidden + [p.name for p in (out / ".publish").glob(".*")])


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("mode", ["midway", "swap"])
def test_killed_dry_run_is_cleaned_by_the_rerun(mode: str, tmp_path: Path) -> None:
    ds = build_dataset(tmp_path / "data", n_images=1, size=128)
    out = tmp_path / "rel"
    build_package(ds, out)
    (out / ".publish" / "state.json").write_text('{"marker": 1}')  # a deposit under way
    before = tree_digest(out)
    (out / ".publish" / ".state.json.0123abcd.tmp").write_text("{")  # a killed state write
    p = subprocess.run([sys.executable, "-c", CHILD, mode, str(ds), str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == -signal.SIGKILL, p.stderr
    if mode == "midway":
        assert tree_digest(out) == before  # the package in place was not touched (the
        # killed run had already removed the stale state temporary)
        assert any(n.endswith(".tmp") for n in _leftovers(out))
    else:
        assert not out.exists()  # moved aside, the new one not yet in place
        assert any(p.name.endswith(".old") for p in tmp_path.iterdir())
    rerun = subprocess.run([sys.executable, "-m", "mfcurate", "publish", str(ds), "--dry-run",
                            "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "(reused)" in rerun.stdout
    assert _leftovers(out) == []
    assert verify_package(out) == []
    assert (out / ".publish" / "state.json").read_text() == '{"marker": 1}'
