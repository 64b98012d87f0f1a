"""QA summary per source (what `mfcurate info` shows)."""

from __future__ import annotations

import json

from synthdata import make_dataset

from mfcurate.dataset import Dataset
from mfcurate.pipelines.refine_masks import refine_masks
from mfcurate.review.summary import QA_COLUMNS, qa_summary


def test_qa_summary_counts_states_flags_and_reprompts(tmp_path):
    ds_dir, _ = make_dataset(tmp_path, n_images=2)
    refine_masks(ds_dir)
    ds = Dataset.open(ds_dir)
    [row] = qa_summary(ds)
    t = ds.objects().to_pylist()
    assert row.source == "synthetic" and row.objects == len(t) == 18
    assert row.with_mask == 18  # every trained label is refined (one had a source mask)
    assert row.by_origin == {"source": 1, "classical": 17}
    assert sum(row.by_state.values()) == 18
    assert row.by_state.get("flagged", 0) == sum(r["qa_state"] == "flagged" for r in t)
    flags = [f for r in t for f in (r["qa_flags"] or [])]
    assert sum(row.by_flag.values()) == len(flags)
    reprompted = sum(json.loads(r["extra"]).get("refine", {}).get("strategy", "box") != "box"
                     for r in t)
    assert row.reprompted == reprompted
    assert len(row.cells()) == len(QA_COLUMNS)
