"""The transform object: maps both ways, masks both ways, JSON round trip, synthetic truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mfcurate.errors import RegistrationError, SourceFormatError
from mfcurate.registration.transfer import dice
from mfcurate.registration.transform import PairTransform
from mfcurate.synth.phh3_pair import make_pair


def _transform() -> PairTransform:
    rng = np.random.default_rng(0)
    th = np.radians(17.0)
    a = np.array([[np.cos(th), -np.sin(th), 40.0], [np.sin(th), np.cos(th), -25.0]]) * 1.01
    yy, xx = np.mgrid[0:30, 0:30]
    field = np.stack([4 * np.sin(xx / 7.0) + rng.normal(0, 0.01, xx.shape),
                      3 * np.cos(yy / 9.0)], axis=2).astype(np.float32)
    res = np.full((30, 30), 0.3, np.float32)
    res[:5] = np.nan
    fb = np.zeros((30, 30), bool)
    fb[10:12] = True
    return PairTransform(a, field, (0.0, 0.0), 20.0, res, fb, 0.5, 0.25, {"channel": "eosin"})


def test_points_map_both_ways() -> None:
    t = _transform()
    pts = np.random.default_rng(1).uniform(50, 550, size=(200, 2))
    back = t.phh3_to_he(t.he_to_phh3(pts))
    assert np.abs(back - pts).max() < 1e-3
    # the field really moves points: without it the map differs by pixels
    plain = PairTransform(t.affine)
    assert np.abs(plain.he_to_phh3(pts) - t.he_to_phh3(pts)).max() > 2.0


def test_json_round_trip(tmp_path: Path) -> None:
    t = _transform()
    p = t.save(tmp_path / "transform.json")
    u = PairTransform.load(p)
    pts = np.random.default_rng(2).uniform(0, 600, size=(50, 2))
    assert np.allclose(u.he_to_phh3(pts), t.he_to_phh3(pts))
    assert np.allclose(u.phh3_to_he(pts), t.phh3_to_he(pts))
    assert u.quality == {"channel": "eosin"}
    assert np.isnan(u.residual_at(np.array([[100.0, 10.0]])))[0]
    assert u.residual_at(np.array([[300.0, 300.0]]))[0] == pytest.approx(0.3, abs=1e-6)
    assert u.fallback_at(np.array([[300.0, 210.0]]))[0]
    assert not u.fallback_at(np.array([[300.0, 400.0]]))[0]
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(SourceFormatError, match=r"bad\.json"):
        PairTransform.load(tmp_path / "bad.json")
    with pytest.raises(RegistrationError):
        PairTransform.from_dict({"format": "x"})


def test_masks_map_both_ways() -> None:
    t = _transform()
    yy, xx = np.mgrid[0:30, 0:40]
    m = ((xx - 20) / 15.0) ** 2 + ((yy - 15) / 9.0) ** 2 < 1
    he_m, he_off = t.map_mask_to_he(m, (300, 200))
    # 1.01 scale and 0.5 vs 0.25 µm/px are in the affine; area scales by 1/1.01^2
    assert abs(he_m.sum() - m.sum() / 1.01**2) < 0.08 * m.sum()
    back, off = t.map_mask_to_phh3(he_m, he_off)
    assert dice(back, off, m, (300, 200)) > 0.9


def test_synthetic_truth_is_consistent() -> None:
    p = make_pair(3, size=512, n_mitoses=4, lost_tissue=True, mirrored=True)
    pts = np.random.default_rng(0).uniform(100, 400, size=(100, 2))
    assert np.abs(p.truth.phh3_to_he(p.truth.he_to_phh3(pts)) - pts).max() < 1e-6
    assert p.he.shape == p.phh3.shape == (512, 512, 3)
    assert 5 <= abs(p.truth.rotation_deg) <= 30
