"""The one grouping of figure parts: mask gap in µm through mpp, size limits."""

from __future__ import annotations

import numpy as np
import pytest

from mfcurate.segment.figure_parts import (
    DEFAULT_PART_GAP_UM,
    PartGrouping,
    group_parts,
    join_figures,
    mask_gap_px,
)


def _ellipse(a_px: float, b_px: float) -> np.ndarray:
    n = int(np.ceil(max(a_px, b_px))) + 1
    yy, xx = np.mgrid[-n:n + 1, -n:n + 1]
    m = (xx / a_px) ** 2 + (yy / b_px) ** 2 <= 1.0
    rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
    return m[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]  # tight


def test_gap_is_exact_and_zero_for_touching_masks() -> None:
    a = np.ones((4, 4), bool)
    assert mask_gap_px(a, (0, 0), a, (4, 0)) == 0.0  # side by side
    assert mask_gap_px(a, (0, 0), a, (10, 0)) == 6.0
    assert mask_gap_px(a, (0, 0), a, (7, 7)) == pytest.approx(np.hypot(4, 4) - 1)


def test_two_masses_of_an_anaphase_are_one_figure_two_nuclei_stay_two() -> None:
    mpp = 0.5
    band = _ellipse(3.0 / mpp, 1.0 / mpp)  # 6 x 2 µm chromatin band, ~9 µm²
    gap_px = round(4.0 / mpp)  # daughter masses 4 µm apart
    h = band.shape[0]
    figs = join_figures([band, band], [(100, 100), (100, 100 + h + gap_px)], mpp)
    assert len(figs) == 1 and figs[0].multi_part and figs[0].members == [0, 1]
    from mfcurate.geometry import count_parts

    assert count_parts(figs[0].mask) == 2
    assert figs[0].centroid_xy[1] == pytest.approx(100 + h + gap_px / 2, abs=1.0)
    # two ordinary nuclei (8 µm across, 50 µm² each): touching-close or at normal spacing
    nuc = _ellipse(4.0 / mpp, 4.0 / mpp)
    w = nuc.shape[1]
    for gap_um in (1.0, 9.0):
        g = group_parts([nuc, nuc], [(0, 0), (w + round(gap_um / mpp), 0)], mpp)
        assert g == [[0], [1]], gap_um


def test_gap_is_physical_not_pixels() -> None:
    a = np.ones((6, 6), bool)
    offs = [(0, 0), (6 + 16, 0)]  # 16 px apart
    assert group_parts([a, a], offs, 0.25) == [[0, 1]]  # 4 µm
    assert group_parts([a, a], offs, 1.0) == [[0], [1]]  # 16 µm
    assert group_parts([a, a], offs, (0.25, 0.25), PartGrouping(max_gap_um=3.0)) == [[0], [1]]
    assert DEFAULT_PART_GAP_UM >= 6.0


def test_chains_stop_at_the_size_limits() -> None:
    mpp = 0.5
    a = np.ones((4, 4), bool)  # 4 µm² specks 3 µm apart, in a row
    offs = [(10 * i, 0) for i in range(8)]
    groups = group_parts([a] * 8, offs, mpp)
    assert all(len(g) <= PartGrouping().max_parts for g in groups)
    assert all(10 * (g[-1] - g[0]) * mpp + 2 <= 18.0 for g in groups)
    assert sorted(i for g in groups for i in g) == list(range(8))
    assert group_parts([a] * 8, offs, mpp, PartGrouping(max_parts=1)) == [[i] for i in range(8)]
