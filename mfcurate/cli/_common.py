"""Shared CLI pieces: error reporting, consoles, progress bars, option aliases."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from mfcurate.errors import MfcurateError, UsageError
from mfcurate.ui import SafeConsole

P = ParamSpec("P")
R = TypeVar("R")

console = SafeConsole()
err_console = SafeConsole(stderr=True, soft_wrap=True)

def _scheduler(value: str | None) -> str | None:
    """Refuse a --scheduler value that is not a Dask address before any work starts."""
    if value is None:
        return None
    from mfcurate.executor import check_scheduler

    try:
        return check_scheduler(value)
    except UsageError as exc:
        raise typer.BadParameter(str(exc)) from None


def finite(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False
           ) -> Callable[[float | None], float | None]:
    """A typer callback refusing NaN, infinities and values outside ``[lo, hi]``.

    ``lo_open`` makes the lower bound exclusive (``> lo``), e.g. for µm/px and sizes.
    """
    def check(value: float | None) -> float | None:
        if value is None:
            return None
        import math

        low_ok = lo is None or (value > lo if lo_open else value >= lo)
        if not math.isfinite(value) or not low_ok or (hi is not None and value > hi):
            lo_txt = "" if lo is None else f"{'>' if lo_open else '>='} {lo}"
            hi_txt = "" if hi is None else f"<= {hi}"
            raise typer.BadParameter(f"{value} is not a finite number "
                                     f"{' and '.join(t for t in (lo_txt, hi_txt) if t)}")
        return value

    return check


#: µm/px a user may give (0.01–100 µm/px: from oil immersion to a thumbnail).
mpp_value = finite(0.01, 100.0)
#: A probability or score threshold.
probability = finite(0.0, 1.0)
#: A strictly positive, finite size (µm, µm², px).
positive = finite(0.0, lo_open=True)

DatasetArg = Annotated[Path, typer.Argument(help="Dataset folder.", show_default=False)]
SchedulerOpt = Annotated[
    str | None,
    typer.Option("--scheduler", callback=_scheduler,
                 help="Dask scheduler address (tcp://HOST:PORT); default: local worker "
                      "processes."),
]
WorkersOpt = Annotated[int, typer.Option("--workers", "-j", min=1,
                                         help="Local worker processes.")]


def error_line(exc: BaseException) -> str:
    """One line for an error a user can cause: an mfcurate error or a file-system error.

    ``OSError`` (EACCES, ENOSPC, ENAMETOOLONG, EISDIR, ENOTDIR, EROFS, ...) names the path(s)
    and the cause, e.g. ``out/coco: Read-only file system``.
    """
    if isinstance(exc, OSError) and not isinstance(exc, MfcurateError) and exc.strerror:
        paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
        where = " -> ".join(paths)
        return f"{where}: {exc.strerror}" if where else exc.strerror
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def fail(exc: BaseException, code: int) -> NoReturn:
    """Print ``error: <one line>`` on stderr and exit with ``code``."""
    err_console.print(Text.assemble(("error:", "red"), " ", error_line(exc)), soft_wrap=True)
    raise typer.Exit(code=code)


def reports_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """The CLI's error boundary around a command.

    Exit codes, one rule: **2** for usage errors (bad options, options that cannot work
    together, unknown names: :class:`UsageError` and click's own), **1** for data and
    environment errors (malformed sources, broken datasets, failed registrations,
    file-system errors), **130** when interrupted.  Each prints one line on stderr; any
    other exception is a bug and keeps its traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except UsageError as exc:
            fail(exc, 2)
        except (MfcurateError, OSError) as exc:
            fail(exc, 1)
        except KeyboardInterrupt:
            err_console.print(Text.assemble(("interrupted", "red"), "; what was committed "
                                            "is kept, rerun to resume"))
            raise typer.Exit(code=130) from None

    return wrapper


def make_progress(transient: bool = False) -> Progress:
    """A rich progress bar with count, rate-friendly columns and ETA (stderr)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=transient,
        disable=not sys.stderr.isatty() and not _force_progress(),
    )


def _force_progress() -> bool:
    import os

    return os.environ.get("MFCURATE_PROGRESS", "") == "1"


@contextmanager
def progress_callback(description: str, total: int | None = None,
                      unit: str = "items") -> Iterator[Callable[..., Any]]:
    """Context manager yielding ``advance(n=1, total=None, objects=0)`` backed by rich."""
    import time

    with make_progress() as progress:
        task = progress.add_task(description, total=total, rate="")
        start = time.perf_counter()
        counted = {"objects": 0}

        def advance(n: int = 1, total: int | None = None, objects: int = 0) -> None:
            counted["objects"] += objects
            elapsed = max(time.perf_counter() - start, 1e-9)
            rate = f"{counted['objects'] / elapsed:,.0f} {unit}/s" if counted["objects"] else ""
            if total is not None:
                progress.update(task, total=total)
            progress.update(task, advance=n, rate=rate)

        yield advance
