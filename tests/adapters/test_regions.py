"""Region polygons of CMC and CCMCT: class names, repair, the dataset round trip, real files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import shapely
from _source_checks import ingest_regions, real

from mfcurate.dataset import Dataset
from mfcurate.pipelines.ingest import ingest_source
from mfcurate.regions import (
    allowed_area,
    allowed_by_image,
    describe,
    make_geometry,
    region_class,
)
from mfcurate.synth.sources import ccmct as fake_ccmct
from mfcurate.synth.sources import cmc as fake_cmc
from mfcurate.synth.sources._sliderunner_fake import EXCLUDE_POLYGON


def test_region_class_names() -> None:
    assert region_class("TUMOR REGION").value == "tumour"
    assert region_class("exclude from tumour region").value == "exclude"
    assert region_class("Nekrosezone").value == "necrosis"
    assert region_class(None).value == "other"


def test_invalid_polygons_are_repaired_or_dropped() -> None:
    bowtie, fixed, why = make_geometry([(0, 0), (10, 10), (10, 0), (0, 10)])
    assert fixed and why is None and bowtie is not None and bowtie.is_valid
    assert bowtie.area == pytest.approx(50.0)
    for verts, kind in (([(0, 0), (5, 5)], "polygon"), ([(0, 0), (5, 5), (0, 0)], "polygon"),
                        ([(0, 0), (5, 0), (10, 0)], "polygon"), ([(1, 1), (8, 1)], "rectangle")):
        geom, _, why = make_geometry(verts, kind)
        assert geom is None and why


def test_allowed_area_is_tumour_minus_cuts() -> None:
    t = shapely.box(0, 0, 100, 100)
    area = allowed_area(["tumour", "exclude", "hpf_roi"], [t, shapely.box(0, 0, 50, 100),
                                                           shapely.box(0, 0, 100, 100)])
    assert area.area == pytest.approx(5000.0)
    assert allowed_area(["exclude"], [t]) is None


def test_synthetic_round_trip_through_the_dataset(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    for mod in (fake_cmc, fake_ccmct):
        spec = mod.generate(tmp_path / mod.KEY)
        rep = ingest_source(mod.KEY, spec.root, out)
        assert rep.n_regions == sum(spec.regions.values())
    ds = Dataset.open(out)
    assert ds.verify() == []
    cc = ds.regions("ccmct")
    assert dict(Counter(cc.column("region_class").to_pylist())) == \
        fake_ccmct.generate(tmp_path / "again").regions
    assert ds.regions().num_rows == cc.num_rows + ds.regions("cmc").num_rows
    # level-0 px and µm² through the image's mpp (0.25 µm/px)
    row = cc.to_pylist()[0]
    assert row["area_um2"] == pytest.approx(row["area_px"] * 0.25 * 0.25)
    assert shapely.from_wkb(row["geometry_wkb"]).area == pytest.approx(row["area_px"])
    # the Tumorzone vertex at x = -6 survives as drawn; the repaired bow-tie is marked
    assert min(b[0] for b in cc.column("bbox_xyxy").to_pylist()) == -6.0
    assert sum(cc.column("repaired").to_pylist()) == 1
    # CMC: tumour minus the exclusion polygon
    allowed = allowed_by_image(ds.regions("cmc"))
    area = allowed["cmc/fa4959e484beec77543b"]
    assert not area.contains(shapely.Point(300, 60))  # inside EXCLUDE_POLYGON
    assert area.contains(shapely.Point(100, 200))
    assert area.intersection(shapely.Polygon(EXCLUDE_POLYGON)).area == pytest.approx(0.0)
    # re-ingest without the Tumorzone file replaces its regions; other sources keep theirs
    ingest_source("ccmct", tmp_path / "ccmct", out, _no_regions())
    ds = Dataset.open(out)
    assert ds.regions("ccmct").num_rows == 5  # only the ODAEL file's own region traps
    assert ds.regions("cmc").num_rows == 7
    assert ds.verify() == []


def _no_regions():  # type: ignore[no-untyped-def]
    from mfcurate.adapters import AdapterConfig

    return AdapterConfig(options={"regions": "none"})


@pytest.mark.real_data
def test_real_tumorzone_polygons() -> None:
    root = real("ccmct", "MITOS_WSI_CCMCT_Tumorzone.sqlite").parent
    a, _images, regions = ingest_regions("ccmct", root, database="tumorzone")
    assert regions.num_rows == 113
    assert len(set(regions.column("image_key").to_pylist())) == 32
    assert Counter(regions.column("source_class").to_pylist()) == {
        "Tumorzone": 41, "nicht tumorgewebe excludieren": 63, "Nekrosezone": 6,
        "unscharfe scan-area": 3}
    assert set(regions.column("region_class").to_pylist()) == {"tumour", "exclude",
                                                               "necrosis", "blurred"}
    assert a.skipped == []  # 466 special spots and 2 spots are not regions, not problems
    boxes = np.asarray(regions.column("bbox_xyxy").to_pylist())
    assert boxes[:, 0].min() == -6.0 and boxes[:, 2].max() == 125756.0
    assert boxes[:, 3].max() == 91742.0
    assert max(regions.column("n_vertices").to_pylist()) == 4452
    assert all(shapely.from_wkb(g).is_valid for g in regions.column("geometry_wkb").to_pylist())
    tumour_mm2 = sum(a for a, c in zip(regions.column("area_um2").to_pylist(),
                                       regions.column("region_class").to_pylist(),
                                       strict=True) if c == "tumour") / 1e6
    assert 4800 < tumour_mm2 < 5000  # the paper: 4,842 mm² of tumour on 32 slides
    assert len(allowed_by_image(regions)) == 32
    line = describe(regions)  # what `mfcurate info` prints for the source
    assert line is not None and line.startswith("113 region polygons on 32 images: exclude 63")
    assert "tumour 41 (4,928.4 mm²)" in line


@pytest.mark.real_data
def test_real_high_mc_areas_rectangles() -> None:
    root = real("ccmct", "HighMCAreas.sqlite").parent
    a, _, regions = ingest_regions("ccmct", root, database="highmcareas", regions="none")
    assert regions.num_rows == 32  # 33 rectangles, the 7 x 0 px one dropped with a line
    assert set(regions.column("region_class").to_pylist()) == {"hpf_roi"}
    assert len(a.skipped) == 1 and "degenerate rectangle (7x0 px)" in a.skipped[0]
