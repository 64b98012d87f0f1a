"""DAB detection rules and the optional segmenter refinement of transferred masks."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from mfcurate.errors import DependencyNotFoundError
from mfcurate.io.reader import ArrayImage
from mfcurate.registration.channels import HED_STAINS, estimate_dab_vector, tissue_mask
from mfcurate.registration.dab import DabOptions, detect_dab
from mfcurate.registration.transfer import TransferredObject, refine_with_segmenter
from mfcurate.segment import Instance
from mfcurate.segment.figure_parts import PartGrouping
from mfcurate.synth.phh3_pair import make_pair


def _match(objs, truth) -> tuple[float, float]:
    vis = truth.visible_mitoses()
    want = truth.he_to_phh3(np.array([truth.mitoses[i].centroid_xy for i in vis]))
    got = np.array([o.centroid_xy for o in objs]).reshape(-1, 2)
    hit_t = sum(1 for w in want if len(got) and np.hypot(*(got - w).T).min() < 10)
    hit_o = sum(1 for g in got if len(want) and np.hypot(*(want - g).T).min() < 10)
    return hit_t / max(1, len(want)), hit_o / max(1, len(got))


@pytest.fixture(scope="module")
def hema_pair():
    return make_pair(11, size=1024, counterstain="hematoxylin", n_mitoses=20, n_g2=10)


@pytest.mark.parametrize("method", ["deconv", "rgb"])
def test_detection_recall_and_precision(hema_pair, method: str) -> None:
    p = hema_pair
    img = ArrayImage(p.phh3, 0.5)
    mask = tissue_mask(p.phh3)
    objs = detect_dab(img, 0.5, mask, 1.0, DabOptions(method=method, tile=512))
    recall, precision = _match(objs, p.truth)
    assert recall >= 0.95
    # the weak speckled (G2) nuclei are not taken for mitoses by the deconvolution rule
    if method == "deconv":
        assert precision >= 0.9
    areas = [o.area_px * 0.25 for o in objs]
    assert min(areas) >= 8.0 and max(areas) <= 250.0


def test_dab_vector_estimate_stays_near_the_truth(hema_pair) -> None:
    s = estimate_dab_vector(hema_pair.phh3, tissue_mask(hema_pair.phh3))
    assert np.degrees(np.arccos(float(s[2] @ HED_STAINS[2]))) < 10
    assert np.allclose(s[:2], HED_STAINS[:2])


def _objects() -> list[TransferredObject]:
    from mfcurate.geometry import mask_to_record

    m = np.zeros((12, 12), bool)
    m[3:9, 3:9] = True
    rec = mask_to_record(m, (100, 100))
    assert rec is not None
    box, rle, area, cen = rec
    return [TransferredObject("00001", box, rle, area, cen, "phh3", None, cen, box, area, 0.5,
                              0.1, [])]


@pytest.fixture
def fresh_segmenters():
    """The worker segmenter cache emptied before and after (a test double must not stay)."""
    from mfcurate.segment.spec import clear_cache

    clear_cache()
    yield
    clear_cache()


def test_refinement_uses_the_box_segmenter(monkeypatch: pytest.MonkeyPatch,
                                           fresh_segmenters) -> None:
    calls = []

    class Disk:
        name = "fake"

        def segment_boxes(self, window, boxes, mpp):
            calls.append((window.shape, boxes.copy(), mpp))
            x0, y0, x1, y1 = boxes[0]
            yy, xx = np.mgrid[0:window.shape[0], 0:window.shape[1]]
            m = (xx - (x0 + x1) / 2) ** 2 + (yy - (y0 + y1) / 2) ** 2 <= 16
            return [Instance(m, (0, 0), 0.8, None, "classical")]

    fake = types.ModuleType("mfcurate.segment.box")
    built = []

    def make(kind, checkpoint=None, model_type="vit_h", device="auto", **_options):
        built.append((kind, model_type, device))
        return Disk()

    fake.make_box_segmenter = make  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mfcurate.segment.box", fake)
    img = ArrayImage(np.full((300, 300, 3), 200, np.uint8), 0.5)
    out = refine_with_segmenter(_objects(), img, 0.5, "classical")
    assert calls and calls[0][2] == 0.5
    # built through SegmenterSpec: the paper's ViT-H default, device auto resolved
    assert built == [("classical", "vit_h", "cuda" if _cuda() else "cpu")]
    o = out[0]
    assert o.mask_origin == "classical" and o.mask_score == 0.8
    assert o.area_px != 36  # the disk replaced the square
    assert abs(o.centroid_xy[0] - 106.0) < 1.0 and abs(o.centroid_xy[1] - 106.0) < 1.0


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def test_refinement_without_the_segmenter_module_is_a_clear_error(
        monkeypatch: pytest.MonkeyPatch, fresh_segmenters) -> None:
    monkeypatch.setitem(sys.modules, "mfcurate.segment.box", None)
    img = ArrayImage(np.full((300, 300, 3), 200, np.uint8), 0.5)
    with pytest.raises(DependencyNotFoundError, match="refine none"):
        refine_with_segmenter(_objects(), img, 0.5, "classical")


def test_classical_refinement_with_the_real_segmenter(pairs) -> None:
    """When the masks issue's segmenter is present, refining coarse masks improves them."""
    import cv2

    pytest.importorskip("mfcurate.segment.box")
    from mfcurate.geometry import decode_mask, mask_grid, mask_to_record
    from mfcurate.io.reader import open_image
    from mfcurate.registration.transfer import dice

    truth = pairs.truth["eosin"]
    objs = []
    for i, m in enumerate(truth.mitoses[:10]):
        coarse = cv2.dilate(np.pad(m.mask, 4).astype(np.uint8), np.ones((7, 7), np.uint8))
        rec = mask_to_record(coarse.astype(bool), (m.offset_xy[0] - 4, m.offset_xy[1] - 4))
        assert rec is not None
        box, rle, area, cen = rec
        objs.append(TransferredObject(f"{i:05d}", box, rle, area, cen, "phh3", None, cen, box,
                                      area, 0.5, 0.1, []))

    def mean_dice(os_: list[TransferredObject]) -> float:
        out = []
        for o, m in zip(os_, truth.mitoses[:10], strict=True):
            x0, y0, w, h = mask_grid(o.bbox_xyxy)
            out.append(dice(decode_mask(o.mask_rle, h, w), (x0, y0), m.mask, m.offset_xy))
        return float(np.mean(out))

    before = mean_dice(objs)
    img = open_image(pairs.root / "eosin" / "he.svs")
    refined = refine_with_segmenter(objs, img, 0.5, "classical")
    img.close()
    assert {o.mask_origin for o in refined} == {"classical"}
    assert mean_dice(refined) > before + 0.05


def _dab_image(blobs: list[tuple[int, int, float, float]], size: int = 200) -> np.ndarray:
    """Eosin tissue with DAB ellipses ``(cx, cy, a_px, b_px)`` (haematoxylin counterstain)."""
    from mfcurate.stain import stains_to_rgb

    yy, xx = np.mgrid[0:size, 0:size]
    conc = np.zeros((size, size, 3))
    conc[:, :, 1] = 0.25
    for cx, cy, a, b in blobs:
        inside = ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1.0
        conc[inside, 0] = 0.3
        conc[inside, 2] = 0.8
    return stains_to_rgb(conc)


def test_two_mass_figure_is_one_object_two_nuclei_stay_two() -> None:
    """Anaphase masses 4 µm apart -> one DAB object with a 2-part mask, flagged for review;
    two DAB-positive nuclei at normal spacing -> two objects (0.5 µm/px)."""
    from mfcurate.geometry import count_parts, decode_mask, mask_grid
    from mfcurate.registration.transfer import transfer_objects
    from mfcurate.registration.transform import PairTransform

    mpp = 0.5
    # two bands 6 x 2.4 µm whose edges are 4 µm apart; two 8 µm nuclei 10 µm apart
    rgb = _dab_image([(60, 60, 6, 2.4), (60, 60 + 2 * 2.4 + 8, 6, 2.4),
                      (140, 60, 8, 8), (140 + 16 + 20, 60, 8, 8)])
    img = ArrayImage(rgb, mpp)
    objs = detect_dab(img, mpp, np.ones((200, 200), bool), 1.0, DabOptions(tile=256))
    assert len(objs) == 3
    fig = next(o for o in objs if o.centroid_xy[0] < 100)
    assert fig.n_parts == 2 and count_parts(fig.mask) == 2
    assert abs(fig.centroid_xy[1] - (60 + 2.4 + 4 + 0.5)) < 2  # between the masses
    assert [o.n_parts for o in objs if o.centroid_xy[0] > 100] == [1, 1]
    # joining off: the old behaviour, one object per mass
    off = detect_dab(img, mpp, np.ones((200, 200), bool), 1.0,
                     DabOptions(tile=256, min_area_um2=3.0,
                                grouping=PartGrouping(max_parts=1)))
    assert len(off) == 4
    moved = transfer_objects(objs, PairTransform(np.eye(2, 3), he_mpp=mpp, phh3_mpp=mpp),
                             (200, 200))
    fig_he = next(m for m in moved if m.centroid_xy[0] < 100)
    assert "multi_component" in fig_he.qa_flags
    _x0, _y0, w, h = mask_grid(fig_he.bbox_xyxy)
    assert count_parts(decode_mask(fig_he.mask_rle, h, w)) == 2
    assert all("multi_component" not in m.qa_flags for m in moved if m is not fig_he)
