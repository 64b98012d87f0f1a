"""Harvest labelling on crafted cases: parts of a figure are linked, neighbours stay negatives."""

from __future__ import annotations

import numpy as np

from mfcurate.geometry import encode_mask
from mfcurate.pipelines.harvest_merge import (
    PART_OVERLAP_FRAC,
    Annotations,
    Candidates,
    label_candidates,
)

MPP = 0.25


def _rect(x0: int, y0: int, x1: int, y1: int) -> tuple[list[float], str, int, list[float]]:
    m = np.ones((y1 - y0, x1 - x0), bool)
    return [float(x0), float(y0), float(x1), float(y1)], encode_mask(m), int(m.sum()), \
        [(x0 + x1) / 2, (y0 + y1) / 2]


def _cands(rects: list[tuple[int, int, int, int]]) -> Candidates:
    recs = [_rect(*r) for r in rects]
    n = len(recs)
    return Candidates(np.zeros(n, np.int64), np.arange(n), np.array([r[0] for r in recs]),
                      [r[1] for r in recs], np.array([r[2] for r in recs]),
                      np.array([r[3] for r in recs]), np.linspace(0.9, 0.8, n), [None] * n,
                      ["sam_auto"] * n)


def test_parts_are_linked_and_neighbours_stay_negatives() -> None:
    # a two-mass figure: annotated box 100..160 x 100..140, the mask covers both masses
    fig_box, _, _, _ = _rect(100, 100, 160, 140)
    mask = np.zeros((40, 60), bool)
    mask[5:35, 0:20] = True  # left mass
    mask[5:35, 40:60] = True  # right mass
    like_box = [300.0, 300.0, 330.0, 330.0]
    ann = Annotations(["f", "l"], ["mitotic_figure", "mitotic_like"],
                      np.array([[130.0, 120.0], [315.0, 315.0]]),
                      np.array([fig_box, like_box]), [encode_mask(mask), None],
                      np.array([[95.0, 95.0, 165.0, 145.0], like_box]))
    c = _cands([
        (100, 105, 120, 135),  # 0: the left mass: IoU 0.5 with the figure's mask, the match
        (140, 105, 160, 135),  # 1: the right mass: centre inside the box
        (150, 110, 200, 134),  # 2: overlaps the right mass, centre (175, 122) outside the box
        (162, 80, 182, 96),    # 3: a separate neighbour, 13 µm away: a valid negative
        (120, 118, 140, 122),  # 4: between the masses (no overlap), centre inside the box
        (305, 305, 325, 325),  # 5: inside a look-alike's box
        (600, 600, 620, 620),  # 6: far away: background
    ])
    res = label_candidates(c, ann, MPP)
    kinds = [d.kind for d in res.decisions]
    assert kinds[3] == "near" and kinds[6] == "background"
    assert res.matches == {0: 0, 1: 5}  # figure -> left mass, look-alike -> its object
    assert kinds[1] == kinds[2] == kinds[4] == "part"
    assert {res.decisions[i].annotation for i in (1, 2, 4)} == {0}
    assert res.decisions[1].how == res.decisions[4].how == "centre_in_box"
    assert res.decisions[2].how == "mask_overlap"
    # overlap of 2 with the figure's mask: 240 px of its 1200 px > PART_OVERLAP_FRAC
    assert 240 / 1200 > PART_OVERLAP_FRAC


def test_part_rule_needs_more_than_a_touch() -> None:
    mask = np.ones((40, 40), bool)
    fig_box = [100.0, 100.0, 140.0, 140.0]
    ann = Annotations(["f"], ["mitotic_figure"], np.array([[120.0, 120.0]]),
                      np.array([fig_box]), [encode_mask(mask)], None)
    # 5 % of the neighbour's area lies on the figure's mask: it touches, it is not a part
    c = _cands([(100, 100, 140, 140), (138, 100, 178, 140)])
    res = label_candidates(c, ann, MPP, exclusion_radius_um=1.0)
    assert [d.kind for d in res.decisions] == ["match", "near"]
    assert res.decisions[1].how == "mask_contact"
