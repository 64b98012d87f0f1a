"""Shared fixtures: two synthetic H&E/pHH3 pairs as SVS files, registered once per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from mfcurate.synth.phh3_pair import PairTruth, make_pair, write_pair

#: size of the test pairs (the 6000 px figures are in bench/bench_register.py)
SIZE = 1536
N_MITOSES = 30


@dataclass
class Pairs:
    root: Path
    truth: dict[str, PairTruth]


@pytest.fixture(scope="session")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Pairs:
    """``root/eosin/{he,phh3}.svs`` (seed 0) and ``root/hema/...`` (seed 1, haematoxylin)."""
    root = tmp_path_factory.mktemp("phh3_pairs")
    truth = {}
    for name, seed, cs in (("eosin", 0, "eosin"), ("hema", 1, "hematoxylin")):
        p = make_pair(seed, size=SIZE, counterstain=cs, n_mitoses=N_MITOSES)
        write_pair(root / name, p)
        truth[name] = p.truth
    return Pairs(root, truth)


@pytest.fixture(scope="session")
def batch(pairs: Pairs, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """Both pairs registered through the batch form (executor)."""
    from mfcurate.pipelines.phh3 import register_batch
    from mfcurate.registration import RegisterOptions

    out = tmp_path_factory.mktemp("phh3_out")
    rows = register_batch(pairs.root, out, RegisterOptions(overlays=1, tumour_type="Canine "
                                                           "mast cell tumour",
                                                           species="canine"))
    return out, rows


def real_root() -> Path:
    """``shared/data/real/images/he_ihc`` beside the repository (may be absent).

    The repository root's parent holds ``shared/``; a worktree one level deeper is also
    looked at.
    """
    repo = Path(__file__).resolve().parents[2]
    for base in (repo / "..", repo / ".." / ".."):
        p = base / "shared" / "data" / "real" / "images" / "he_ihc"
        if p.exists():
            return p
    return repo / ".." / "shared" / "data" / "real" / "images" / "he_ihc"
