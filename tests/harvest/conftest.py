"""Fixtures of the harvest tests."""

from __future__ import annotations

import pytest
from harvest_synth import SynthSlide, make_synth_dataset


@pytest.fixture(scope="module")
def synth_slide(tmp_path_factory: pytest.TempPathFactory) -> SynthSlide:
    """A committed synthetic dataset (module scope: rendered once)."""
    return make_synth_dataset(tmp_path_factory.mktemp("harvest"))
