"""Write every synthetic source the demo ingests, side by side under one folder."""

from __future__ import annotations

from pathlib import Path

from mfcurate.synth.sources import generators
from mfcurate.synth.spec import FakeSpec

#: Sources the demo builds and ingests (every source with a generator, except the
#: subset MIDOG 2021 which would duplicate MIDOG++ images).
DEMO_EXCLUDE = {"midog2021"}


def write_demo_sources(root: Path, seed: int = 0) -> dict[str, FakeSpec]:
    """Generate each source under ``root/<key>``; return key -> truth."""
    out = {}
    for key, gen in generators().items():
        if key in DEMO_EXCLUDE:
            continue
        folder = root / key.replace("+", "p")
        out[key] = gen(folder, seed=seed)
    return out
