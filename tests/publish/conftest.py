from __future__ import annotations

from pathlib import Path

import pytest

from tests.publish.synthetic_dataset import build_dataset


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_dataset(tmp_path_factory.mktemp("pubds"))


@pytest.fixture(scope="session")
def metadata() -> dict[str, object]:
    return {"title": "Synthetic MF nuclei", "description": "<p>Test release.</p>",
            "creators": [{"name": "Doe, Jane", "affiliation": "Nowhere Institute",
                          "orcid": "0000-0002-1825-0097"}],
            "keywords": ["test"], "communities": [{"identifier": "mfcurate"}]}
