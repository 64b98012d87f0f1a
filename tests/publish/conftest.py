from __future__ import annotations

from pathlib import Path

import pytest

from synthetic_dataset import build_dataset  # type: ignore[import-not-found]


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_dataset(tmp_path_factory.mktemp("pubds"))
