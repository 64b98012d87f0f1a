"""Acceptance counts on the real annotation files in ../shared/data/real (skipped if absent)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc

from mfcurate.adapters import AdapterConfig, get_adapter
from mfcurate.dataset import Dataset
from mfcurate.pipelines.ingest import ingest_source
from tests.conftest import real_path


def _counts(objects) -> dict[str, int]:
    return {v["values"].as_py(): v["counts"].as_py() for v in pc.value_counts(objects["label"])}


def test_midogpp_real_counts() -> None:
    root = real_path("midogpp")
    images, objects = get_adapter("midog++")(root).to_tables()
    assert images.num_rows == 503
    assert _counts(objects) == {"mitotic_figure": 11937, "mitotic_like": 14349}
    splits = {v["values"].as_py(): v["counts"].as_py() for v in pc.value_counts(images["split"])}
    assert splits == {"train": 392, "test": 111}
    # the 50 unlabelled JSON images (151-200) are not images of the dataset
    ids = {int(i) for i in images["source_image_id"].to_pylist()}
    assert not ids & set(range(151, 201))
    # all boxes are the 50 x 50 MIDOG boxes unless clipped at the image border
    boxes = objects["bbox_xyxy"].to_pylist()
    full = [abs(b[2] - b[0] - 50) < 1e-9 and abs(b[3] - b[1] - 50) < 1e-9 for b in boxes]
    assert sum(full) == len(boxes) - 274
    size = {r["image_key"]: (r["width"], r["height"]) for r in images.to_pylist()}
    for b, ok, key in zip(boxes, full, objects["image_key"].to_pylist(), strict=True):
        if not ok:  # each of the 274 others was cut by its image's border
            w, h = size[key]
            assert b[0] <= 0 or b[1] <= 0 or b[2] >= w or b[3] >= h, (key, b)
    # expert votes are kept
    votes = objects["votes"].to_pylist()
    assert all(v and 2 <= len(v) <= 3 for v in votes)
    scanners = set(images["scanner"].to_pylist())
    assert "Hamammatsu XR" not in scanners and "Hamamatsu XR" in scanners


def test_midog2021_real_counts_json_and_sqlite() -> None:
    root = real_path("midogpp", "midog2021")
    for option in ("json", "sqlite"):
        images, objects = get_adapter("midog2021")(
            root, AdapterConfig(options={"annotations": option})).to_tables()
        assert images.num_rows == 150
        assert _counts(objects) == {"mitotic_figure": 1721, "mitotic_like": 2714}
    # SQLite votes exclude the RetinaNet machine person
    voters = {v["annotator"] for vs in objects["votes"].to_pylist() for v in vs or []}
    assert "RetinaNet" not in voters and voters <= {"expert 1", "expert 2", "expert 3"}


def test_folder_adapter_reads_a_real_aperio_slide(tmp_path: Path) -> None:
    svs = real_path("images", "wsi", "CMU-1-Small-Region.svs")
    root = tmp_path / "inhouse"
    root.mkdir()
    (root / "CMU-1-Small-Region.svs").symlink_to(svs)
    (root / "CMU-1-Small-Region.geojson").write_text(
        '{"type": "FeatureCollection", "features": ['
        '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1000, 1200]},'
        ' "properties": {"classification": {"name": "Mitotic figure"}}},'
        '{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": '
        '[[[500, 500], [520, 505], [515, 530], [498, 522], [500, 500]]]},'
        ' "properties": {"classification": {"name": "Hard negative"}}}]}')
    images, objects = get_adapter("folder")(root).to_tables()
    img = images.to_pylist()[0]
    assert abs(img["mpp_x"] - 0.499) < 1e-6 and img["vendor"] == "aperio"
    assert (img["width"], img["height"]) == (2220, 2967)
    assert _counts(objects) == {"mitotic_figure": 1, "mitotic_like": 1}
    point = objects.filter(pc.equal(objects["label_origin"], "centroid")).to_pylist()[0]
    x0, _, x1, _ = point["bbox_xyxy"]
    assert abs((x1 - x0) - 12.5 / 0.499) < 1e-6  # the 12.5 µm box through the file's mpp
    poly = objects.filter(pc.equal(objects["label_origin"], "polygon")).to_pylist()[0]
    assert poly["mask_origin"] == "source"
    assert abs(poly["area_um2"] - poly["area_px"] * 0.499**2) < 1e-6


def test_ingest_real_midog_into_a_dataset(tmp_path: Path) -> None:
    root = real_path("midogpp")
    report = ingest_source("midog++", root, tmp_path / "ds")
    assert report.n_objects == 26286 and len(report.missing_images) == 503
    ds = Dataset.open(tmp_path / "ds")
    assert ds.manifest["counts"]["by_source"]["midog++"]["by_label"] == {
        "mitotic_figure": 11937, "mitotic_like": 14349}
