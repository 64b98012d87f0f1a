"""Classical box segmenter: real NuCLS tiles (floor on IoU) and synthetic truth."""

from __future__ import annotations

import numpy as np
import pytest
from synthdata import REAL

from mfcurate.segment.box import make_box_segmenter
from mfcurate.segment.box_classical import ClassicalBoxSegmenter, haematoxylin_od

NUCLS = REAL / "images" / "nuclei" / "nucls_cellvitpp"


def _nucls():
    if not (NUCLS / "images").is_dir():
        pytest.skip(f"real data not present: {NUCLS}")
    from PIL import Image

    for f in sorted((NUCLS / "images").glob("*.png")):
        rgb = np.asarray(Image.open(f).convert("RGB"))
        inst = np.asarray(Image.open(NUCLS / "inst_masks" / f.name))
        yield rgb, inst


def _score(seg, tight: bool, naive: bool = False) -> tuple[float, float, int]:
    ious, dices = [], []
    for rgb, inst in _nucls():
        ids = np.unique(inst)[1:]
        boxes = []
        for i in ids:
            ys, xs = np.nonzero(inst == i)
            if tight:
                boxes.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
            else:  # MIDOG++-style: fixed 50 px box centred on the annotated nucleus
                cx, cy = xs.mean() + 0.5, ys.mean() + 0.5
                boxes.append((cx - 25, cy - 25, cx + 25, cy + 25))
        boxes = np.asarray(boxes, float)
        preds = _naive(rgb, boxes) if naive else seg.segment_boxes(rgb, boxes, 0.25)
        for i, p in zip(ids, preds, strict=True):
            g = inst == i
            m = np.zeros_like(g)
            if p is not None:
                x, y = p.offset_xy
                h, w = p.mask.shape
                m[y:y + h, x:x + w] = p.mask[: m.shape[0] - y, : m.shape[1] - x]
            inter = (m & g).sum()
            ious.append(inter / (m | g).sum())
            dices.append(2 * inter / (m.sum() + g.sum()))
    return float(np.mean(ious)), float(np.mean(dices)), len(ious)


def _naive(rgb, boxes):
    """Naive baseline: haematoxylin Otsu inside the box, component at the centre."""
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu

    from mfcurate.segment import Instance

    h = haematoxylin_od(rgb)
    out = []
    for x0, y0, x1, y1 in boxes:
        x0, y0 = max(round(x0), 0), max(round(y0), 0)
        x1, y1 = min(round(x1), h.shape[1]), min(round(y1), h.shape[0])
        c = h[y0:y1, x0:x1]
        lab, _ = ndi.label(c > threshold_otsu(c))
        k = lab[(y1 - y0) // 2, (x1 - x0) // 2]
        out.append(Instance(mask=lab == k, offset_xy=(x0, y0), score=1.0) if k else None)
    return out


@pytest.mark.real_data
def test_nucls_fixed_50px_boxes_floor():
    seg = make_box_segmenter("classical")
    iou, dice, n = _score(seg, tight=False)
    naive_iou, naive_dice, _ = _score(None, tight=False, naive=True)
    print(f"NuCLS fixed 50px boxes: n={n} IoU={iou:.3f} Dice={dice:.3f} "
          f"(naive Otsu IoU={naive_iou:.3f} Dice={naive_dice:.3f})")
    assert n == 640
    assert iou >= 0.70  # measured 0.707 (0.711 before sister masses); the bar is 0.65
    assert dice >= 0.79
    assert iou >= naive_iou + 0.15


@pytest.mark.real_data
def test_nucls_tight_boxes_floor():
    iou, dice, _ = _score(ClassicalBoxSegmenter(box_fit="tight"), tight=True)
    print(f"NuCLS tight boxes: IoU={iou:.3f} Dice={dice:.3f}")
    assert iou >= 0.80  # measured 0.818
    assert dice >= 0.88


def test_synthetic_figures_match_planted_masks():
    from mfcurate.synth.render import render_tissue

    rgb, planted = render_tissue(np.random.default_rng(3), 320, 320, n_mitotic=4,
                                 n_mitotic_like=4)
    figs = [p for p in planted if p.kind != "nucleus"]
    boxes = np.array([[p.centroid_xy[0] - 25, p.centroid_xy[1] - 25,
                       p.centroid_xy[0] + 25, p.centroid_xy[1] + 25] for p in figs])
    preds = ClassicalBoxSegmenter().segment_boxes(rgb, boxes, 0.25)
    ious = []
    for p, inst in zip(figs, preds, strict=True):
        assert inst is not None and inst.origin == "classical" and 0 <= inst.score <= 1
        a = np.zeros((320, 320), bool)
        b = np.zeros((320, 320), bool)
        x, y = inst.offset_xy
        a[y:y + inst.mask.shape[0], x:x + inst.mask.shape[1]] = inst.mask
        x, y = p.offset_xy
        ys, xs = np.nonzero(p.mask)
        b[ys + y, xs + x] = True
        ious.append((a & b).sum() / (a | b).sum())
    assert np.mean(ious) > 0.85, ious


def test_blank_window_gives_none_and_factory_errors():
    from mfcurate.errors import UsageError

    white = np.full((64, 64, 3), 255, np.uint8)
    assert ClassicalBoxSegmenter().segment_boxes(white, np.array([[10, 10, 40, 40.]]), 0.25) \
        == [None]
    assert ClassicalBoxSegmenter().segment_boxes(white, np.zeros((0, 4)), 0.25) == []
    with pytest.raises(UsageError):
        make_box_segmenter("sam")
    with pytest.raises(UsageError):
        make_box_segmenter("watershed")
