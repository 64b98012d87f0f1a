"""The step registry: what ``mfcurate demo`` and ``mfcurate run RECIPE.toml`` can run.

A pipeline module registers its step with :func:`step`; a recipe names steps and their
options.  Every step takes a :class:`StepContext` and keyword options (the recipe's
``[steps.<name>]`` table) and returns a small summary dict (printed, and kept in the run log).

Steps are discovered by importing every module of :mod:`mfcurate.pipelines`, so a new step
touches no shared file.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from mfcurate.ui import SafeConsole


@dataclass
class StepContext:
    """What every step gets.

    Attributes:
        dataset: the dataset folder the recipe works on.
        work_dir: a folder for the run's own outputs (models, detections, reports...).
        console: where to print human-readable progress.
        scheduler: Dask scheduler address or None (local).
        workers: local worker processes.
        seed: base random seed of the run.
        state: values steps hand to later steps (e.g. ``checkpoints`` from training).
    """

    dataset: Path
    work_dir: Path
    console: Console = field(default_factory=SafeConsole)
    scheduler: str | None = None
    workers: int = 1
    seed: int = 0
    state: dict[str, Any] = field(default_factory=dict)


StepFn = Callable[..., dict[str, Any]]

#: name -> step function; filled by the :func:`step` decorator.
STEPS: dict[str, StepFn] = {}


def step(name: str) -> Callable[[StepFn], StepFn]:
    """Register a step function under ``name`` (e.g. ``"refine-masks"``)."""

    def deco(fn: StepFn) -> StepFn:
        if name in STEPS and STEPS[name] is not fn:
            raise ValueError(f"step {name!r} registered twice")
        STEPS[name] = fn
        return fn

    return deco


def all_steps() -> dict[str, StepFn]:
    """Import every pipeline module and return the registry."""
    import mfcurate.pipelines as pkg

    for mod in pkgutil.walk_packages(pkg.__path__, prefix="mfcurate.pipelines."):
        importlib.import_module(mod.name)
    return dict(STEPS)
