"""``harvest --within tumour-region``: only inside the tumour regions minus their cuts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely

from mfcurate.adapters import AdapterConfig
from mfcurate.dataset import Dataset
from mfcurate.errors import UsageError
from mfcurate.pipelines.harvest import HarvestConfig, harvest_dataset
from mfcurate.pipelines.ingest import ingest_source
from mfcurate.regions import allowed_by_image, inside
from mfcurate.synth.sources import generators
from mfcurate.synth.sources._sliderunner_fake import EXCLUDE_POLYGON


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fake CMC (tumour + exclusion polygons) and CCMCT (Tumorzone DB) and a source without
    regions (ICPR 2012), ingested into one dataset."""
    tmp = tmp_path_factory.mktemp("within")
    out = tmp / "ds"
    for key in ("cmc", "ccmct", "icpr2012"):
        spec = generators()[key](tmp / key, seed=1)
        ingest_source(key, spec.root, out, AdapterConfig(options=dict(spec.options)))
    return out


def _centres(ds: Dataset, source: str) -> tuple[list[str], np.ndarray]:
    t = ds.objects(sources=[source], parts=["harvest"], columns=["image_key", "centroid_xy"])
    return (t.column("image_key").to_pylist(),
            np.asarray(t.column("centroid_xy").to_pylist(), float).reshape(-1, 2))


def test_no_object_outside_the_allowed_area(dataset: Path) -> None:
    whole = harvest_dataset(dataset, HarvestConfig(backend="classical"), ["cmc", "ccmct"])
    ds = Dataset.open(dataset)
    n_whole = {s: len(_centres(ds, s)[0]) for s in ("cmc", "ccmct")}
    rep = harvest_dataset(dataset, HarvestConfig(backend="classical", within="tumour-region"))
    ds = Dataset.open(dataset)
    assert rep.within_regions == 6  # every CMC and CCMCT slide has tumour regions
    outside_any = 0
    for src in ("cmc", "ccmct"):
        areas = allowed_by_image(ds.regions(src))
        keys, xy = _centres(ds, src)
        assert keys, f"{src}: nothing harvested"
        for key in set(keys):
            sel = np.asarray([k == key for k in keys])
            assert inside(areas[key], xy[sel]).all(), f"{key}: object centred outside"
        assert len(keys) < n_whole[src]  # the exclusion/necrosis areas held objects
        outside_any += n_whole[src] - len(keys)
    assert rep.outside_region > 0 and outside_any > 0
    # CMC's exclusion polygon (on the slides with cells) is empty of harvested objects
    keys, xy = _centres(ds, "cmc")
    on_cells = np.asarray([not k.endswith("0a1b2c3d4e5f60718293") for k in keys])
    excl = shapely.Polygon(EXCLUDE_POLYGON)
    assert on_cells.any() and not inside(excl, xy[on_cells]).any()
    # the source without regions falls back to the whole tissue, said once
    assert rep.within_fallback and all(k.startswith("icpr2012/") for k in rep.within_fallback)
    line = rep.within_line()
    assert line is not None and "no tumour region" in line and str(
        len(rep.within_fallback)) in line
    assert whole.within_line() is None


def test_within_is_checked() -> None:
    with pytest.raises(UsageError, match="within"):
        HarvestConfig(within="tumor")
    assert HarvestConfig(within="tumour-region").digest() != HarvestConfig().digest()
