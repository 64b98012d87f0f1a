"""The second, independent pair generator (mfcurate.testing.warp_pairs) and registration on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mfcurate.io.reader import open_image
from mfcurate.registration import PairTransform, RegisterOptions
from mfcurate.registration.pair import estimate_transform
from mfcurate.registration.quality import check_quality
from mfcurate.testing.evaluate import landmark_score
from mfcurate.testing.warp_pairs import PairRenderer, Tear, make_truth, write_pair


@pytest.fixture(scope="module")
def warp_pair(tmp_path_factory: pytest.TempPathFactory):
    truth = make_truth(5, 1280, counterstain="hematoxylin")
    folder = tmp_path_factory.mktemp("warp")
    he, ph = write_pair(folder, truth)
    return truth, he, ph


def test_blocks_agree_on_their_overlap() -> None:
    r = PairRenderer(make_truth(1, 1024))
    for f in (r.he_block, r.ph_block):
        a = f(300, 400, 400, 300)
        b = f(400, 500, 100, 100)
        assert np.abs(a[100:200, 100:200].astype(int) - b).max() <= 1


def test_truth_maps_both_ways_and_tears_open_a_gap() -> None:
    t = make_truth(2, 2048)
    ph, he, near = t.landmarks(300)
    assert len(he) == 300 and 0 < near.mean() < 1
    assert np.abs(t.phh3_to_he(ph) - he).max() < 1e-6
    tear = Tear((0.0, 0.0), (100.0, 0.0), 10.0, 20.0)
    u = np.array([[50.0, 1.0], [50.0, 8.0], [50.0, -30.0]])
    t_, gap = tear.close(u)
    assert gap.tolist() == [True, False, False]
    assert np.allclose(tear.open(t_[1:]), u[1:])


def test_written_slide_is_a_pyramid_with_mpp(warp_pair) -> None:
    _t, he, _ph = warp_pair
    img = open_image(he)
    assert img.mpp_x == pytest.approx(0.5) and len(img.level_dimensions) >= 2
    assert img.level_dimensions[0] == (1280, 1280)


def test_registration_on_the_unseen_generator(warp_pair) -> None:
    truth, he, ph = warp_pair
    a, b = open_image(he), open_image(ph)
    _, _, glob, tr = estimate_transform(a, b, he, ph, 0.5, 0.5, RegisterOptions())
    assert check_quality(tr.quality) == []
    assert tr.quality["refine_channel"] == "hematoxylin"
    s = landmark_score(tr, truth).summary()
    # sub-pixel (1 px = 0.5 µm) on a pair with folds, tears and stain drift
    assert s["tre_median_um"] <= 0.4
    assert s["wrong_unflagged_share"] <= 0.05  # small canvas: edges weigh more
    assert np.median(landmark_score(glob, truth).errors_um) > 3 * s["tre_median_um"]


def test_slide_level_fit_is_deterministic(warp_pair) -> None:
    """The same pair gives the same fit on every call (no shared RNG, no randomised matcher)."""
    from mfcurate.registration.rigid import fit_similarity, read_lowres

    _truth, he, ph = warp_pair
    a, b = (read_lowres(open_image(p), 0.5, 2.0) for p in (he, ph))
    fits = [fit_similarity(a, b).affine_low for _ in range(3)]
    assert all(np.array_equal(fits[0], f) for f in fits[1:])


def test_failed_regions_flag_points_and_objects() -> None:
    from mfcurate.registration.dab import DabObject
    from mfcurate.registration.transfer import transfer_objects

    failed = np.zeros((20, 20), bool)
    failed[:, 10:] = True
    tr = PairTransform(np.array([[1.0, 0, 0], [0, 1.0, 0]]), np.zeros((20, 20, 2), np.float32),
                       step=10.0, residual=np.zeros((20, 20), np.float32),
                       fallback=np.zeros((20, 20), bool), failed=failed)
    assert tr.failed_at(np.array([[20.0, 50.0], [150.0, 50.0]])).tolist() == [False, True]
    m = np.ones((5, 5), bool)
    objs = transfer_objects([DabObject(m, (20, 50), 25, 0.5), DabObject(m, (150, 50), 25, 0.5)],
                            tr, (200, 200))
    assert ["registration_failed_region" in o.qa_flags for o in objs] == [False, True]
    d = PairTransform.from_dict(tr.to_dict())
    assert d.failed is not None and d.failed.sum() == failed.sum()


def test_write_pair_reusing_the_he_matches(tmp_path: Path) -> None:
    t = make_truth(3, 512, max_rotation_deg=10)
    _, ph_a = write_pair(tmp_path / "a", t)
    _, ph_b = write_pair(tmp_path / "b", t, reuse_he=True)
    a = open_image(ph_a).read_region(0, 0, 512, 512).astype(int)
    b = open_image(ph_b).read_region(0, 0, 512, 512).astype(int)
    assert np.abs(a - b).mean() < 0.1
