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


def _move_exclusion(db: Path, slide: int, polygon: list[tuple[float, float]]) -> None:
    """Redraw the "Exclude from tumor region" polygon (class 5) of one slide of a CMC DB."""
    import sqlite3

    con = sqlite3.connect(db)
    try:
        (uid,) = con.execute("SELECT uid FROM Annotations WHERE slide = ? AND agreedClass = 5",
                             (slide,)).fetchone()
        rows = [r[0] for r in con.execute("SELECT rowid FROM Annotations_coordinates WHERE "
                                          "annoId = ? ORDER BY rowid", (uid,))]
        assert len(rows) == len(polygon)
        for rowid, (x, y) in zip(rows, polygon, strict=True):
            con.execute("UPDATE Annotations_coordinates SET coordinateX = ?, coordinateY = ? "
                        "WHERE rowid = ?", (x, y, rowid))
        con.commit()
    finally:
        con.close()


def _harvested(ds: Path) -> list[tuple[object, ...]]:
    t = Dataset.open(ds).objects(sources=["cmc"], parts=["harvest"], columns=[
        "object_key", "label", "qa_state", "centroid_xy", "bbox_xyxy", "mask_rle"])
    return sorted(tuple(str(v) for v in r.values()) for r in t.to_pylist())


def test_changed_regions_are_harvested_anew(tmp_path: Path) -> None:
    """Tiles are cached per task; with ``within`` a task's id names its image's tile plan, so
    regions changed by a re-ingest (same settings) re-plan and re-segment that image only."""
    from mfcurate.synth.sources import cmc as fake_cmc

    spec = fake_cmc.generate(tmp_path / "cmc", seed=1)
    ds = tmp_path / "ds"
    ingest_source("cmc", spec.root, ds)
    cfg = HarvestConfig(backend="classical", within="tumour-region", tile=128, overlap=32,
                        tiles_per_task=2)
    done: list[int] = []

    def progress(n: int = 1, total: int | None = None, objects: int | None = None) -> None:
        if objects is not None:  # one call per task run now (not found done)
            done.append(n)

    first = harvest_dataset(ds, cfg, progress=progress)
    tiles = Path(first.work_dir) / "tiles"
    n_first, before = len(done), {p.name for p in tiles.iterdir()}
    assert n_first == len(before) > 0
    manifest = (ds / "manifest.json").read_bytes()
    # unchanged regions: every task found done, the dataset byte-identical
    done.clear()
    assert harvest_dataset(ds, cfg, progress=progress).work_dir == first.work_dir
    assert done == [] and (ds / "manifest.json").read_bytes() == manifest
    # re-ingest with slide 2's exclusion moved over its left half: its tiles change
    _move_exclusion(spec.annotation_files[0], 2, [(-4.0, -4.0), (200.0, -4.0),
                                                  (200.0, 260.0), (-4.0, 260.0)])
    ingest_source("cmc", spec.root, ds)
    done.clear()
    again = harvest_dataset(ds, cfg, progress=progress)
    assert again.work_dir == first.work_dir  # same settings, same work folder
    new = {p.name for p in tiles.iterdir()} - before
    assert new and len(done) == len(new)
    assert all(n.startswith("cmc_fa4959e484beec77543b_") for n in new)  # only that slide
    # ... and the result equals a fresh harvest of the changed source
    fresh = tmp_path / "fresh"
    ingest_source("cmc", spec.root, fresh)
    harvest_dataset(fresh, cfg)
    assert _harvested(ds) == _harvested(fresh)
    area = allowed_by_image(Dataset.open(ds).regions("cmc"))["cmc/fa4959e484beec77543b"]
    keys, xy = _centres(Dataset.open(ds), "cmc")
    sel = np.asarray([k == "cmc/fa4959e484beec77543b" for k in keys])
    assert sel.any() and inside(area, xy[sel]).all() and (xy[sel][:, 0] > 200).all()
