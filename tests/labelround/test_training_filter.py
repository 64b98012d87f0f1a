"""``uncertain`` objects are never cut into training patches."""

from __future__ import annotations

from pathlib import Path

from mfcurate.classifier.patches import PatchConfig, _image_tasks
from mfcurate.dataset import Dataset, Selection
from mfcurate.labelround.ops import new_round


def test_uncertain_objects_are_not_patched(dataset: Path, tmp_path: Path) -> None:
    ds = Dataset.open(dataset)
    im = ds.images().to_pylist()[0]
    cands = tmp_path / "candidates.csv"
    cands.write_text(f"image,x,y,score\n{im['image_key']},33.3,44.4,0.9\n")
    new_round(dataset, tmp_path / "round1", ["a", "b"], candidates=cands, match_um=0.01)
    ds = Dataset.open(dataset)
    labels = set(ds.objects().column("label").to_pylist())
    assert "uncertain" in labels
    tasks, _, _ = _image_tasks(ds, PatchConfig(), None, Selection(), include_disk=True)
    patched = {o[0]: o[1] for t in tasks for o in t.payload["objects"]}
    assert patched and "uncertain" not in set(patched.values())
    det = [k for k in ds.objects().column("object_key").to_pylist()
           if k.endswith("/det-round1-33-44")]  # keyed by round, image and centre
    assert len(det) == 1 and det[0] not in patched
