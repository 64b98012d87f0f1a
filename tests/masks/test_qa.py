"""Mask QA and automatic re-prompting on crafted cases."""

from __future__ import annotations

import numpy as np
import pytest

from mfcurate.segment import Instance
from mfcurate.segment.qa import (
    QAConfig,
    clean_instance,
    mask_flags,
    quality,
    refine_window,
    scale_boxes,
)

BOX = np.array([0.0, 0.0, 50.0, 50.0])
ANCHOR = (25.0, 25.0)
MPP = 0.25


def disk(cx, cy, r, shape=(50, 50)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r


def flags_of(mask, score=0.95, stability=0.95, origin="sam_box", anchor=ANCHOR):
    inst = Instance(mask=mask, offset_xy=(0, 0), score=score, stability=stability, origin=origin)
    return mask_flags(inst, clean_instance(inst, anchor), BOX, anchor, MPP, QAConfig())


def test_good_nucleus_passes():
    assert flags_of(disk(25, 25, 12)) == []  # 12 px radius = 3 µm: 28 µm²


def test_each_flag_on_a_crafted_case():
    assert "low_score" in flags_of(disk(25, 25, 12), score=0.5)
    assert "low_stability" in flags_of(disk(25, 25, 12), stability=0.4)
    assert "low_score" in flags_of(disk(25, 25, 12), score=0.01, origin="classical")
    leak = np.zeros((50, 50), bool)
    leak[10:50, 0:40] = True  # reaches the left and bottom edges
    assert "box_edge" in flags_of(leak)
    two = disk(15, 25, 7) | disk(38, 25, 7)
    f = flags_of(two)
    assert "multi_component" in f
    assert "area_out_of_range" in flags_of(disk(25, 25, 3))  # 28 px = 1.8 µm²
    off = disk(40, 40, 8)
    assert "centroid_offset" in flags_of(off)


def test_clean_keeps_every_part_inside_the_box_and_fills_holes():
    ring = disk(25, 25, 10) & ~disk(25, 25, 3)
    speck = disk(5, 5, 1.5)  # 9 px, under a tenth of the ring: noise
    sister = disk(42, 25, 6)  # a second chromatin mass inside the box
    inst = Instance(mask=ring | speck | sister, offset_xy=(0, 0), score=1.0)
    c = clean_instance(inst, ANCHOR, BOX)
    assert c.mask[25, 25] and c.mask[25, 42] and not c.mask[5, 5]
    assert c.mask.sum() == (disk(25, 25, 10) | sister).sum()
    # a mass mostly outside the prompt box is a neighbour, not a part
    c = clean_instance(inst, ANCHOR, np.array([0.0, 0.0, 36.0, 50.0]))
    assert not c.mask[25, 42] and c.mask.sum() == disk(25, 25, 10).sum()
    # the annotation point between two masses (telophase): both are kept, and flagged
    two = disk(12, 25, 7) | disk(38, 25, 7)
    c = clean_instance(Instance(mask=two, offset_xy=(0, 0), score=1.0), ANCHOR, BOX)
    assert c.mask.sum() == two.sum()
    assert flags_of(two) == ["multi_component"]


def test_multi_part_mask_is_kept_without_reprompt():
    two = disk(12, 25, 7) | disk(38, 25, 7)

    class TwoParts:
        name = "classical"
        calls = 0

        def segment_boxes(self, window, boxes, mpp):
            self.calls += 1
            return [Instance(mask=two, offset_xy=(0, 0), score=0.9, origin="classical")
                    for _ in boxes]

    seg = TwoParts()
    [r] = refine_window(seg, np.zeros((50, 50, 3), np.uint8), BOX[None], np.array([ANCHOR]),
                        MPP)
    assert seg.calls == 1  # review-only flag: no re-prompt
    assert r.instance.mask.sum() == two.sum() and r.strategy == "box"
    assert r.flags == ["multi_component"] and r.qa_state == "flagged"
    assert r.quality == pytest.approx(0.9)  # costs nothing


class FakeClassical:
    """First prompt leaks into a neighbour; the larger box gives the right nucleus."""

    name = "classical"

    def __init__(self):
        self.calls = []

    def segment_boxes(self, window, boxes, mpp):
        self.calls.append(np.asarray(boxes).copy())
        out = []
        for b in boxes:
            side = b[2] - b[0]
            if side > 60:  # larger box
                out.append(Instance(mask=disk(25, 25, 11), offset_xy=(0, 0), score=0.5,
                                    origin="classical"))
            elif side < 40:  # smaller box: nothing
                out.append(None)
            else:
                leak = np.zeros((50, 50), bool)
                leak[5:50, 0:45] = True
                out.append(Instance(mask=leak, offset_xy=(0, 0), score=0.6, origin="classical"))
        return out


def test_reprompt_keeps_the_better_mask_classical():
    seg = FakeClassical()
    [r] = refine_window(seg, np.zeros((50, 50, 3), np.uint8), BOX[None], np.array([ANCHOR]),
                        MPP)
    assert r.strategy == "larger_box"
    assert "box_edge" in r.initial_flags
    assert r.flags == [] and r.qa_state == "unreviewed"
    assert len(seg.calls) == 3  # first prompt, larger box, smaller box (each one batch)
    np.testing.assert_allclose(seg.calls[1][0], scale_boxes(BOX[None], 1.5)[0])


class FakeSam:
    """A SAM-like segmenter: only the box+point prompt finds the nucleus."""

    name = "sam"

    def __init__(self):
        self.windows = 0
        self.predicts = []

    def set_window(self, window):
        pass  # the window encoded by segment_boxes is reused

    def segment_boxes(self, window, boxes, mpp):
        self.windows += 1
        return [Instance(mask=disk(25, 25, 12), offset_xy=(0, 0), score=0.3, stability=0.5,
                         origin="sam_box") for _ in boxes]

    def predict(self, boxes, points=None, multimask=False):
        self.predicts.append(("point" if points is not None else
                              "multi" if multimask else "box", len(boxes)))
        n = 3 if multimask else 1
        good = points is not None
        return [[Instance(mask=disk(25, 25, 12), offset_xy=(0, 0),
                          score=0.95 if good else 0.4, stability=0.97 if good else 0.6,
                          origin="sam_box") for _ in range(n)] for _ in boxes]


def test_reprompt_sam_strategies_and_best_choice():
    seg = FakeSam()
    boxes = np.stack([BOX, BOX])
    res = refine_window(seg, np.zeros((50, 50, 3), np.uint8), boxes,
                        np.array([ANCHOR, ANCHOR]), MPP)
    assert seg.windows == 1
    assert sorted(p[0] for p in seg.predicts) == ["box", "multi", "point"]
    assert all(p[1] == 2 for p in seg.predicts)  # batched over the flagged boxes
    for r in res:
        assert r.strategy == "box+point"
        assert set(r.initial_flags) == {"low_score", "low_stability"}
        assert r.flags == []
        assert r.quality == pytest.approx(0.95 * 0.97)


def test_what_stays_bad_is_flagged_and_empty_gets_a_disk():
    class Empty:
        name = "classical"

        def segment_boxes(self, window, boxes, mpp):
            return [None for _ in boxes]

    [r] = refine_window(Empty(), np.zeros((50, 50, 3), np.uint8), BOX[None],
                        np.array([ANCHOR]), MPP)
    assert r.qa_state == "flagged" and r.flags == ["empty"]
    assert r.instance.origin == "disk" and r.strategy == "fallback_disk"
    area_um2 = r.instance.mask.sum() * MPP * MPP
    assert area_um2 == pytest.approx(np.pi * 16, rel=0.1)

    class Bad:
        name = "other"

        def segment_boxes(self, window, boxes, mpp):
            return [Instance(mask=disk(25, 25, 12), offset_xy=(0, 0), score=0.2,
                             stability=0.2, origin="sam_box") for _ in boxes]

    [r] = refine_window(Bad(), np.zeros((50, 50, 3), np.uint8), BOX[None],
                        np.array([ANCHOR]), MPP)
    assert r.qa_state == "flagged" and r.strategy == "box"
    assert quality(r.instance, r.flags, QAConfig()) == pytest.approx(r.quality)
