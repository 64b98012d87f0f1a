from __future__ import annotations

from pathlib import Path

import pytest

from tests.publish.synthetic_dataset import build_dataset


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_dataset(tmp_path_factory.mktemp("ds"))
