"""One executor for per-image / per-slide / per-tile work: local processes or a Dask cluster.

Every task has a unique key and produces one Parquet file in an output folder, written
atomically by the worker.  A rerun skips tasks whose file already exists, so an interrupted
run restarted with the same command resumes and ends with exactly the result of an
uninterrupted one.  The caller merges the per-task files when all are done.

Backends:

* ``workers == 1`` and no scheduler: in-process, serial (tests, debugging).
* ``workers > 1``: a local process pool (``spawn`` context, safe with torch and OpenSlide).
* ``scheduler="tcp://HOST:PORT"``: an existing ``dask.distributed`` cluster (e.g. started by
  dask-jobqueue on SLURM); the same tasks are submitted there.  ``scheduler="local"`` starts a
  throw-away ``LocalCluster`` (used by tests).
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mfcurate.dataset import remove_stale_temporaries, write_parquet_atomic
from mfcurate.errors import MfcurateError, UsageError

TaskFn = Callable[[Any], pa.Table]
#: Seconds to wait for a Dask scheduler to answer.
SCHEDULER_TIMEOUT_S = 10
Progress = Callable[..., Any]


@dataclass(frozen=True)
class Task:
    """A unit of work: a unique key (names the output file) and a picklable payload."""

    key: str
    payload: Any


def task_output(out_dir: Path, key: str) -> Path:
    """Output file of a task: a readable prefix of the key plus a hash (unique, filesystem-safe)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", key)[:60]
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    return out_dir / f"{safe}-{digest}.parquet"


def _is_complete(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        pq.ParquetFile(path).metadata  # noqa: B018 - reading the footer validates the file
    except Exception:
        path.unlink()
        return False
    return True


def _run_one(fn: TaskFn, task: Task, out: str) -> tuple[str, int]:
    """Worker side: run the task, write its table atomically, return (key, rows)."""
    table = fn(task.payload)
    write_parquet_atomic(Path(out), [table], table.schema)  # an empty table still marks it done
    return task.key, table.num_rows


def run_tasks(
    fn: TaskFn,
    tasks: Sequence[Task],
    out_dir: Path,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    progress: Progress | None = None,
    max_in_flight: int | None = None,
) -> list[Path]:
    """Run ``fn(task.payload)`` for every task not yet done; return outputs in task order.

    Args:
        fn: a module-level (picklable) function returning a ``pa.Table``.
        tasks: the work; keys must be unique.
        out_dir: where per-task Parquet files go.
        workers: local worker processes (ignored with ``scheduler``).
        scheduler: Dask scheduler address, ``"local"`` for a LocalCluster, or None.
        progress: ``progress(n=1, total=None, objects=rows)`` called per finished task.
        max_in_flight: bound on submitted-but-unfinished tasks (default ``4 * workers``).

    Returns:
        The output file of every task (done now or before), in the order of ``tasks``.
    """
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError("task keys must be unique")
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir)  # a killed run's (runs sharing out_dir must not overlap)
    outputs = [task_output(out_dir, t.key) for t in tasks]
    todo = [(t, o) for t, o in zip(tasks, outputs, strict=True) if not _is_complete(o)]
    if progress is not None:
        progress(n=len(tasks) - len(todo), total=len(tasks))
    if not todo:
        return outputs
    if scheduler:
        check_scheduler(scheduler)
        _run_dask(fn, todo, scheduler, progress)
    elif workers <= 1:
        for t, o in todo:
            _, rows = _run_one(fn, t, str(o))
            if progress is not None:
                progress(n=1, objects=rows)
    else:
        _run_pool(fn, todo, workers, progress, max_in_flight or 4 * workers)
    return outputs


def _worker_init() -> None:
    """Local worker set-up: die with the parent, leave Ctrl-C to the parent.

    On Linux the worker asks the kernel for SIGKILL when its parent dies
    (``PR_SET_PDEATHSIG``), so SIGKILL or SIGTERM of the command never leaves workers
    behind; SIGINT is ignored so that Ctrl-C reaches only the parent, which stops the pool
    and prints one line.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
        except OSError:  # pragma: no cover - no glibc (e.g. musl): best effort
            pass
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)


def _run_pool(fn: TaskFn, todo: list[tuple[Task, Path]], workers: int,
              progress: Progress | None, max_in_flight: int) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    pending: set[Future[tuple[str, int]]] = set()
    it = iter(todo)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init)
    try:
        while True:
            while len(pending) < max_in_flight:
                nxt = next(it, None)
                if nxt is None:
                    break
                pending.add(pool.submit(_run_one, fn, nxt[0], str(nxt[1])))
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                _, rows = fut.result()
                if progress is not None:
                    progress(n=1, objects=rows)
    except BaseException:  # interrupted or a task failed: stop the workers now
        _kill_pool(pool)
        raise
    pool.shutdown(wait=True)


def _kill_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel queued tasks and kill the workers (finished task files are kept)."""
    procs = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.kill()
    for p in procs:
        p.join(timeout=5)


#: Dask scheduler addresses mfcurate accepts (``local`` starts a throw-away cluster).
ADDRESS = re.compile(r"^(?:(?:tcp|tls|ucx|ws|wss|inproc)://)?[A-Za-z0-9._\-\[\]:]+:\d{1,5}$")


def check_scheduler(address: str) -> str:
    """Return ``address`` if it can name a Dask scheduler (``local`` or ``[proto://]host:port``).

    Raises:
        UsageError: it cannot.
    """
    if address == "local" or ADDRESS.match(address):
        return address
    raise UsageError(f"scheduler {address!r} is not a Dask scheduler address; write "
                     "tcp://HOST:PORT (or local)")


def _run_dask(fn: TaskFn, todo: list[tuple[Task, Path]], scheduler: str,
              progress: Progress | None) -> None:
    from distributed import Client, LocalCluster, as_completed

    check_scheduler(scheduler)
    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as exc:
            raise MfcurateError(f"no Dask scheduler reachable at {scheduler} within "
                                f"{SCHEDULER_TIMEOUT_S} s ({type(exc).__name__})") from None
    try:
        futures = [client.submit(_run_one, fn, t, str(o), key=f"mfcurate-{o.stem}", pure=False)
                   for t, o in todo]
        for fut in as_completed(futures):
            _, rows = fut.result()
            if progress is not None:
                progress(n=1, objects=rows)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def read_outputs(paths: Sequence[Path]) -> list[pa.Table]:
    """Read per-task outputs (in the given order)."""
    return [pq.read_table(p) for p in paths]
