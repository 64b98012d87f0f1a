"""Shared test helpers: where the real data lives (skip when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL = (REPO.parent / "shared" / "data" / "real").resolve()

os.environ.setdefault("MPLBACKEND", "Agg")


def real_path(*parts: str) -> Path:
    """Path under ../shared/data/real; skips the test when it is absent."""
    p = REAL.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not present: {p}")
    return p


@pytest.fixture
def real() -> type:
    """Access to :func:`real_path` as a fixture (``real("midogpp")``)."""
    return real_path  # type: ignore[return-value]
