"""SAM box prompting with a tiny SAM saved to a checkpoint and loaded by the real path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mfcurate.segment.box import make_box_segmenter
from mfcurate.segment.box_sam import SamBoxSegmenter, predict_one_box_per_call
from mfcurate.segment.sam_models import build_tiny_sam, save_checkpoint
from mfcurate.synth.render import render_tissue

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("sam") / "tiny.pth"
    save_checkpoint(build_tiny_sam(seed=1), path)
    return path


def _boxes(planted, n, half=25):
    return np.array([[p.centroid_xy[0] - half, p.centroid_xy[1] - half,
                      p.centroid_xy[0] + half, p.centroid_xy[1] + half] for p in planted[:n]])


@pytest.fixture(scope="module")
def tiny_seg(tiny_ckpt):
    seg = make_box_segmenter("sam", tiny_ckpt, "tiny", "cpu")
    assert isinstance(seg, SamBoxSegmenter)
    return seg


@pytest.mark.parametrize(("shape", "n"), [((256, 256), 3), ((200, 230), 2)])
def test_batched_masks_identical_to_one_box_per_call(tiny_seg, shape, n):
    seg = tiny_seg
    before = seg.encodings
    rgb, planted = render_tissue(np.random.default_rng(5), *shape, n_mitotic=2,
                                 n_mitotic_like=2)
    boxes = _boxes(planted, n)
    got = seg.segment_boxes(rgb, boxes, 0.25)
    assert seg.encodings == before + 1  # one image encoding for the whole window
    ref = predict_one_box_per_call(seg.sam, rgb, boxes)
    compared = 0
    for box, inst, (full, iou) in zip(boxes, got, ref, strict=True):
        x0, y0, x1, y1 = seg.crop_region(box)
        expect = full[y0:y1, x0:x1]
        mine = np.zeros_like(expect) if inst is None else inst.mask
        assert mine.shape == expect.shape
        # batching the prompts changes float summation order, which can flip a pixel whose
        # logit is within rounding of 0; anything beyond a couple of pixels is a real bug
        flips = int(np.count_nonzero(mine != expect))
        assert flips <= max(2, 0.002 * int(expect.sum())), flips
        if inst is not None:
            assert inst.offset_xy == (x0, y0)
            assert inst.score == pytest.approx(iou, abs=1e-6)
            assert 0.0 <= inst.stability <= 1.0
            compared += int(expect.sum())
    assert compared > 0  # the model produced masks to compare


def test_prompts_are_batched_in_one_decoder_call(tiny_seg):
    seg = tiny_seg
    seg.encodings = 0
    calls = []
    decoder = seg.sam.mask_decoder
    orig = decoder.forward

    def spy(*a, **kw):
        calls.append(kw["sparse_prompt_embeddings"].shape[0])
        return orig(*a, **kw)

    decoder.forward = spy
    seg._key = None
    rgb, planted = render_tissue(np.random.default_rng(2), 256, 256)
    boxes = _boxes(planted, 3)
    seg.segment_boxes(rgb, boxes, 0.25)
    seg.segment_boxes(rgb, boxes[:1], 0.25)  # same window object: no re-encoding
    assert calls == [3, 1]
    assert seg.encodings == 1
    seg.segment_boxes(rgb.copy(), boxes[:1], 0.25)
    assert seg.encodings == 2
    del decoder.forward


def test_window_larger_than_1024_is_refused(tiny_seg):
    seg = tiny_seg
    with pytest.raises(ValueError, match="larger than 1024"):
        seg.segment_boxes(np.zeros((1100, 64, 3), np.uint8), np.array([[0, 0, 10, 10.]]), 0.25)


def test_bad_checkpoint_is_a_clear_error(tmp_path):
    from mfcurate.errors import MfcurateError

    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(MfcurateError, match=r"bad\.pth"):
        make_box_segmenter("sam", bad, "tiny")
    with pytest.raises(MfcurateError, match="does not exist"):
        make_box_segmenter("sam", tmp_path / "missing.pth", "tiny")
