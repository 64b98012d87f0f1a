"""Training pools as the paper used them, and images two sources share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mfcurate.classifier.pool import RunSplits, holdout_pairs, pool_selection
from mfcurate.dataset import Dataset, Selection, select_images
from mfcurate.dataset.duplicates import mark_duplicates
from mfcurate.errors import UsageError
from tests.conftest import real_path
from tests.partitions.conftest import add_source


def _keys(ds: Dataset, sel: Selection) -> set[str]:
    return set(select_images(ds, sel, columns=["image_key"]).column("image_key").to_pylist())


@pytest.fixture
def three(tmp_path: Path) -> Dataset:
    root = tmp_path / "ds"
    add_source(root, "midog++", [("1.png", "train", "human", "human breast cancer"),
                                 ("2.png", "test", "human", "human breast cancer"),
                                 ("3.png", "test", "canine", "canine lymphoma")])
    add_source(root, "ccmct", [("a.svs", "train", "canine", "canine mast cell tumour"),
                               ("b.svs", "test", "canine", "canine mast cell tumour")])
    add_source(root, "icpr2012", [("A00.bmp", "train", "human", "human breast cancer"),
                                  ("A01.bmp", "test", "human", "human breast cancer")])
    return Dataset.open(root)


def test_default_holdout_is_midogpp_test_only(three: Dataset) -> None:
    sel, notes = pool_selection(three)
    assert sel.holdout == (("midog++", "test"),) and not notes
    # CCMCT's and ICPR's test images are training data, as in the paper
    assert _keys(three, sel) == {"midog++/1.png", "ccmct/a.svs", "ccmct/b.svs",
                                 "icpr2012/A00.bmp", "icpr2012/A01.bmp"}
    human, _ = pool_selection(three, {"species": ["human"]}, ["midog++:test", "icpr2012:test"])
    assert _keys(three, human) == {"midog++/1.png", "icpr2012/A00.bmp"}
    assert _keys(three, pool_selection(three, holdout=["none"])[0]) == _keys(three, Selection())
    with pytest.raises(UsageError, match="holds no source 'tupac16'"):
        holdout_pairs(three, ["tupac16:test"])
    with pytest.raises(UsageError, match="SOURCE:SPLIT"):
        holdout_pairs(three, ["test"])


def test_default_holdout_without_midogpp_says_so(tmp_path: Path) -> None:
    add_source(tmp_path / "ds", "ccmct", [("a.svs", "train", "canine", "ccmct")])
    sel, notes = pool_selection(Dataset.open(tmp_path / "ds"))
    assert sel.holdout == () and "holds no midog++" in notes[0]


def test_pixel_copy_is_marked_and_its_test_split_carried(three: Dataset, tmp_path: Path
                                                         ) -> None:
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 255, (256, 256, 3), dtype=np.uint8) for _ in range(2))
    root = tmp_path / "pix"
    add_source(root, "orig", [("x.png", "test", "human", "t"), ("y.png", "train", "human", "t")],
               files={"x.png": a, "y.png": b})
    # a later source re-publishes x.png under another name; z.png is new
    add_source(root, "later", [("copy-of-x.png", "train", "human", "t"),
                               ("z.png", "train", "human", "t")],
               files={"copy-of-x.png": a, "z.png": b[::-1].copy()})
    ds = Dataset.open(root)
    reports = mark_duplicates(ds, "later")
    assert len(reports) == 1 and reports[0].by == "pixel hash"
    assert reports[0].line().startswith("later: 1 of 2 images are copies of orig images")
    ds.reload()
    rows = {r["image_key"]: r for r in ds.images(sources=["later"]).to_pylist()}
    assert rows["later/copy-of-x.png"]["duplicate_of"] == "orig/x.png"
    assert rows["later/copy-of-x.png"]["split"] == "test"  # carried over
    assert rows["later/z.png"]["duplicate_of"] is None
    # duplicates are left out by default; a holdout removes the copy even when kept
    assert "later/copy-of-x.png" not in _keys(ds, Selection())
    kept = Selection(include_duplicates=True, holdout=(("orig", "test"),))
    assert _keys(ds, kept) == {"orig/y.png", "later/z.png"}


def test_run_splits_refuse_tuning_on_trained_images(tmp_path: Path) -> None:
    import json

    (tmp_path / "splits.json").write_text(json.dumps({"holdout": [["midog++", "test"]],
        "members": [{"seed": 0, "dir": "seed-0", "train_images": ["a", "b"],
                     "val_images": ["c", "d"]},
                    {"seed": 1, "dir": "seed-1", "train_images": ["a", "c"],
                     "val_images": ["b", "d"]}]}))
    run = RunSplits.load(tmp_path)
    assert run.trained_images == {"a", "b", "c"}
    assert run.untouched_val_images == {"d"}  # c and b trained another member
    run.check_tuning(["d"])
    run.check_tuning(["c"], [run.members[0]])  # member 0 never saw c
    with pytest.raises(UsageError, match="refusing to tune"):
        run.check_tuning(["c", "d"])


def test_real_midog2021_inside_midogpp(tmp_path: Path) -> None:
    from mfcurate.pipelines.ingest import ingest_source

    pp, m21 = real_path("midogpp"), real_path("midogpp", "midog2021")
    ingest_source("midog2021", m21, tmp_path / "ds")  # the copy first: still marked
    rep = ingest_source("midog++", pp, tmp_path / "ds")
    assert rep.duplicates == ["midog2021: 150 of 150 images are copies of midog++ images "
                              "(by file name and size); marked duplicate_of, split carried "
                              "over (33 test, 117 train); left out of selections by default"]
    ds = Dataset.open(tmp_path / "ds")
    m = ds.images(sources=["midog2021"]).to_pylist()
    assert all(r["duplicate_of"] == f"midog++/{int(r['source_image_id'])}" for r in m)
    assert sum(r["split"] == "test" for r in m) == 33
    pool, _ = pool_selection(ds)
    assert len(_keys(ds, pool)) == 392  # MIDOG++ train only; no MIDOG 2021 copy comes back
    keep_copies = Selection(include_duplicates=True, holdout=(("midog++", "test"),))
    assert len(_keys(ds, keep_copies)) == 392 + 117
