"""The synthetic classifier dataset, with exact masks or with a segmenter's masks."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.compute as pc

from mfcurate.dataset import Dataset
from mfcurate.synth.classifier_data import SyntheticSplit, build_classifier_dataset


def test_exact_and_segmented_objects(tmp_path: Path, dark_blobs: object) -> None:
    kw = {"splits": SyntheticSplit(train=1, val=0, test=1), "size_px": 256,
          "n_mitotic": 4, "n_mitotic_like": 3, "seed": 9}
    exact = Dataset.open(build_classifier_dataset(tmp_path / "a", **kw))  # type: ignore[arg-type]
    seg = Dataset.open(build_classifier_dataset(tmp_path / "b", segmenter=dark_blobs,  # type: ignore[arg-type]
                                                **kw))
    ims = exact.images().to_pylist()
    assert [i["split"] for i in ims] == ["train", "test"] and ims[0]["mpp_x"] == 0.5
    from mfcurate.io import open_image

    assert open_image(exact.image_path(ims[0])).mpp_x is not None  # PNG carries its mpp
    e = Counter(exact.objects(columns=["label"]).column("label").to_pylist())
    assert e["mitotic_figure"] == 8 and e["mitotic_like"] == 6 and e["background"] > 50
    o = seg.objects(columns=["label", "mask_origin"])
    s = Counter(o.column("label").to_pylist())
    # every planted figure and look-alike is present once (segmented or, if missed, exact)
    assert s["mitotic_figure"] == 8 and s["mitotic_like"] == 6
    assert abs(s["background"] - e["background"]) <= 0.1 * e["background"]
    assert pc.sum(pc.equal(o.column("mask_origin"), "classical")).as_py() > 0.9 * o.num_rows
