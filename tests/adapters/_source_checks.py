"""Helpers of the per-source adapter tests (issue 3): real-data location and contract checks.

The lead's ``test_contract.py`` runs the same checks over the whole registry; these copies let
each source's test file stand alone.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

from mfcurate.adapters import AdapterConfig, get_adapter
from mfcurate.errors import SourceFormatError, SourceNotFoundError
from mfcurate.synth.spec import FakeSpec

REAL = Path(os.environ.get("MFCURATE_REAL_DATA") or
            Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real")


def real(*parts: str) -> Path:
    """A path under the shared real data; skips the test when it is absent."""
    p = REAL.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not present: {p}")
    return p


def ingest(key: str, root: Path, **options: str):  # type: ignore[no-untyped-def]
    """Run an adapter; return (adapter, images, objects)."""
    a = get_adapter(key)(root, AdapterConfig(options=dict(options)))
    images, objects = a.to_tables()
    return a, images, objects


def ingest_regions(key: str, root: Path, **options: str):  # type: ignore[no-untyped-def]
    """Run an adapter including its region files; return (adapter, images, regions)."""
    a = get_adapter(key)(root, AdapterConfig(options=dict(options)))
    images, _ = a.to_tables()
    return a, images, a.regions_table()


def label_counts(objects) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return dict(Counter(objects.column("label").to_pylist()))


def check_contract(spec: FakeSpec, tmp_path: Path) -> None:
    """The contract on one generated source (see the module doc)."""
    _a, images, objects = ingest(spec.source, spec.root, **spec.options)
    assert images.num_rows == spec.n_images
    assert label_counts(objects) == spec.counts
    _, _, regions = ingest_regions(spec.source, spec.root, **spec.options)
    assert dict(Counter(regions.column("region_class").to_pylist())) == spec.regions
    _, images2, objects2 = ingest(spec.source, spec.root, **spec.options)
    assert images2.equals(images) and objects2.equals(objects)
    # boxes inside images whose size is known
    keys = images.column("image_key").to_pylist()
    w = dict(zip(keys, images.column("width").to_pylist(), strict=True))
    h = dict(zip(keys, images.column("height").to_pylist(), strict=True))
    for key, box in zip(objects.column("image_key").to_pylist(),
                        objects.column("bbox_xyxy").to_pylist(), strict=True):
        assert w[key] and h[key]
        assert 0 <= box[0] < box[2] <= w[key] and 0 <= box[1] < box[3] <= h[key]
    # an image without annotations: zero rows, right schema
    for iid in spec.empty_image_ids:
        ikey = f"{spec.source}/{iid}"
        assert ikey in w
        assert ikey not in set(objects.column("image_key").to_pylist())
    # missing root
    missing = tmp_path / "no-such-root"
    with pytest.raises(SourceNotFoundError, match="no-such-root"):
        get_adapter(spec.source)(missing, AdapterConfig(options=dict(spec.options)))
    # truncated annotation files
    assert spec.annotation_files
    for f in spec.annotation_files:
        copy = tmp_path / f"trunc-{f.name}"
        if copy.exists():
            shutil.rmtree(copy)
        shutil.copytree(spec.root, copy)
        target = copy / f.relative_to(spec.root)
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
        with pytest.raises(SourceFormatError) as err:
            ingest_regions(spec.source, copy, **spec.options)
        assert target.name in str(err.value)
