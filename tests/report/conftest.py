from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_HELPER = Path(__file__).resolve().parents[1] / "publish" / "synthetic_dataset.py"


def _load_helper() -> object:
    name = "mfcurate_test_synthetic_dataset"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _HELPER)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


build_dataset = _load_helper().build_dataset  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_dataset(tmp_path_factory.mktemp("ds"))
