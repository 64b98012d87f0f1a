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

    def make(kind, checkpoint=None, model_type="vit_h", device="auto"):
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
        refine_with_segmenter(_objects(), img, 0.5, "sam")


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
