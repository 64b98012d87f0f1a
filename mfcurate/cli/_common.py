"""Shared CLI pieces: error reporting, consoles, progress bars, option aliases."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from mfcurate.errors import MfcurateError, UsageError

P = ParamSpec("P")
R = TypeVar("R")

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

DatasetArg = Annotated[Path, typer.Argument(help="Dataset folder.", show_default=False)]
SchedulerOpt = Annotated[
    str | None,
    typer.Option("--scheduler", help="Dask scheduler address (tcp://HOST:PORT); "
                                     "default: local worker processes."),
]
WorkersOpt = Annotated[int, typer.Option("--workers", "-j", min=1,
                                         help="Local worker processes.")]


def reports_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn :class:`MfcurateError` into one red line on stderr and exit code 1 (2 for usage)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except UsageError as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None
        except (MfcurateError, FileNotFoundError) as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from None

    return wrapper


def make_progress(transient: bool = False) -> Progress:
    """A rich progress bar with count, rate-friendly columns and ETA (stderr)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
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
