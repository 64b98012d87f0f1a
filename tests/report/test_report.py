from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from mfcurate.dataset import Dataset
from mfcurate.report.html import build_report
from mfcurate.report.stats import dataset_stats

REPO = Path(__file__).resolve().parents[2]


def test_report_is_self_contained(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    info = build_report(dataset, out, examples_per_label=2, crop_px=64)
    text = out.read_text()
    for heading in ("Counts per source and tumour type", "Species and scanners",
                    "Object size (µm²)", "Mask origin and QA state", "Examples"):
        assert heading in text
    # no external resources: every image is an inline PNG that decodes
    assert not re.search(r'src="(?!data:)', text) and "<link" not in text
    pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(pngs) == info["figures"] >= 7
    for b in pngs:
        img = Image.open(io.BytesIO(base64.b64decode(b)))
        assert img.format == "PNG" and min(img.size) > 50
        arr = np.asarray(img.convert("L"))
        assert arr.std() > 5  # not blank
    live = [o for o in Dataset.open(dataset).objects(columns=["qa_state"]).to_pylist()
            if o["qa_state"] != "rejected"]
    assert info["objects"] == len(live)  # rejected rows are not counted


def test_table1_counts(dataset: Path) -> None:
    ds = Dataset.open(dataset)
    t = dataset_stats(ds).table1()
    every = ds.objects(columns=["source", "label", "qa_state"]).to_pylist()
    objs = [o for o in every if o["qa_state"] != "rejected"]
    assert len(objs) < len(every)  # the fixture has rejected rows: Table 1 leaves them out
    all_row = t[t["source"] == "All"].iloc[0]
    assert all_row["images"] == ds.images().num_rows
    assert all_row["total"] == len(objs)
    for lab in ("mitotic_figure", "mitotic_like", "background"):
        assert all_row[lab] == sum(o["label"] == lab for o in objs)
    liz = t[t["source"] == "lizard"]
    assert list(liz["tumour_type"]) == ["human colon cancer"]
    assert int(liz["mitotic_figure"].iloc[0]) == sum(
        o["label"] == "mitotic_figure" and o["source"] == "lizard" for o in objs)


def test_report_cli(dataset: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = tmp_path / "cli.html"
    p = subprocess.run([sys.executable, "-m", "mfcurate", "report", str(dataset), "--out",
                        str(out), "--examples", "1"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert out.exists() and "wrote" in p.stdout
    p = subprocess.run([sys.executable, "-m", "mfcurate", "report", str(tmp_path / "nope")],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 1 and "does not exist" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
