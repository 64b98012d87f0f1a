"""Local workers die with their parent: SIGKILL of a ``-j 2`` run leaves no worker behind.

A subprocess runs four tasks through :func:`mfcurate.executor.run_tasks` with two local
worker processes: two quick tasks commit their outputs, two slow ones (30 s) hold both
workers, each task writing its worker's pid first.  The parent is killed with SIGKILL; the
workers must be gone within a few seconds (``PR_SET_PDEATHSIG``), the two committed outputs
stay intact, and a rerun resumes: only the two unfinished tasks run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from synthdata import REPO, python

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="PR_SET_PDEATHSIG is Linux-only")

TASK_MODULE = '''
import os, time
from pathlib import Path
import pyarrow as pa

def sleepy(payload):
    """Record this worker's pid, sleep, return one row."""
    pids = Path(payload["pids"])
    (pids / f"{payload['key']}.{os.getpid()}").touch()
    time.sleep(payload["sleep"])
    return pa.table({"key": [payload["key"]], "pid": [os.getpid()]})
'''

PARENT = '''
import sys
from pathlib import Path
from mfcurate.executor import Task, run_tasks
from sleepy_task import sleepy

root, slow = Path(sys.argv[1]), float(sys.argv[2])
tasks = [Task(f"t{i}", {"pids": str(root / "pids"), "key": f"t{i}",
                        "sleep": 0.0 if i < 2 else slow}) for i in range(4)]
run_tasks(sleepy, tasks, root / "work", workers=2, max_in_flight=2)
'''


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _run(root: Path, slow: float, **kwargs: object) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(root)]))
    return subprocess.Popen([python(), "-c", PARENT, str(root), str(slow)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)


def _worker_pids(root: Path, keys: tuple[str, ...]) -> dict[str, int]:
    return {p.name.split(".")[0]: int(p.name.split(".")[1])
            for p in (root / "pids").iterdir() if p.name.split(".")[0] in keys}


def test_sigkill_of_the_parent_kills_the_workers_and_a_rerun_resumes(tmp_path: Path) -> None:
    (tmp_path / "sleepy_task.py").write_text(TASK_MODULE)
    (tmp_path / "pids").mkdir()
    work = tmp_path / "work"
    proc = _run(tmp_path, 30.0)
    deadline = time.monotonic() + 60
    slow: dict[str, int] = {}
    while time.monotonic() < deadline and proc.poll() is None and len(slow) < 2:
        slow = _worker_pids(tmp_path, ("t2", "t3"))
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    assert len(set(slow.values())) == 2  # both workers busy with a slow task
    assert all(_alive(pid) for pid in slow.values())
    done = {p: p.stat().st_mtime_ns for p in work.glob("*.parquet")}
    assert len(done) == 2  # the quick tasks are committed
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    gone_by = time.monotonic() + 5
    while time.monotonic() < gone_by and any(_alive(pid) for pid in slow.values()):
        time.sleep(0.05)
    assert not [pid for pid in slow.values() if _alive(pid)], "workers outlived the parent"
    for p, mtime in done.items():  # committed outputs intact
        assert p.stat().st_mtime_ns == mtime and pq.read_table(p).num_rows == 1
    rerun = _run(tmp_path, 0.0)
    assert rerun.wait(timeout=120) == 0, rerun.stderr.read() if rerun.stderr else ""
    outputs = sorted(work.glob("*.parquet"))
    assert len(outputs) == 4 and not list(work.glob(".*.tmp"))
    for p, mtime in done.items():  # the rerun did not redo them
        assert p.stat().st_mtime_ns == mtime
    keys = sorted(pq.read_table(p).column("key")[0].as_py() for p in outputs)
    assert keys == ["t0", "t1", "t2", "t3"]
    runs = [p.name.split(".")[0] for p in (tmp_path / "pids").iterdir()]
    assert sorted(runs) == ["t0", "t1", "t2", "t2", "t3", "t3"]  # only t2, t3 ran again
