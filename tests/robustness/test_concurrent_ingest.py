"""Two ingests of different sources into one dataset at the same time both land."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mfcurate.dataset import Dataset


def test_concurrent_ingests_both_land(tmp_path: Path) -> None:
    from mfcurate.synth.sources import generators

    gens = generators()
    roots = {}
    for key in ("tupac16", "icpr2012"):
        roots[key] = tmp_path / key
        gens[key](roots[key], seed=2)
    ds = tmp_path / "ds"
    procs = [subprocess.Popen([sys.executable, "-m", "mfcurate", "ingest", key, str(root),
                               "--out", str(ds)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for key, root in roots.items()]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert "Traceback" not in err
    opened = Dataset.open(ds)
    assert set(opened.sources) == set(roots)
    assert opened.verify() == []
    for key in roots:
        assert opened.source_info(key)["counts"]["objects"] > 0
