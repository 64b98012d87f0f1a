"""Fake-data generators, one module per source, each writing the source's real on-disk format.

Every module defines ``generate(root: Path, seed: int = 0) -> FakeSpec`` and ``KEY`` (the
adapter key).  :func:`generators` discovers them, so the contract test covers every adapter
that has a generator, and a test checks that every registered adapter has one.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path

from mfcurate.synth.spec import FakeSpec

Generator = Callable[..., FakeSpec]


def generators() -> dict[str, Generator]:
    """Adapter key -> generator function, for every module in this package."""
    import mfcurate.synth.sources as pkg

    out: dict[str, Generator] = {}
    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"mfcurate.synth.sources.{mod.name}")
        keys = getattr(module, "KEYS", None) or [module.KEY]
        for key in keys:
            out[key] = _bind(module.generate, key) if len(keys) > 1 else module.generate
    return dict(sorted(out.items()))


def _bind(fn: Callable[..., FakeSpec], key: str) -> Generator:
    def gen(root: Path, seed: int = 0) -> FakeSpec:
        return fn(root, seed=seed, key=key)

    return gen


__all__ = ["FakeSpec", "generators"]
