"""The fast SAM automatic generator reproduces segment_anything's, on a tiny model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mfcurate.errors import UsageError
from mfcurate.segment.auto import make_auto_segmenter
from mfcurate.segment.auto_sam import (
    AmgOptions,
    SamAutoSegmenter,
    StockSamAutoSegmenter,
    _interp_matrix,
    _Upsampler,
)
from mfcurate.segment.sam_models import build_tiny_sam, save_checkpoint, sharpen_random_sam
from mfcurate.synth.render import render_tissue

torch.set_num_threads(1)


def _sharp_tiny_sam(image_size: int, gain: float = 50.0) -> torch.nn.Module:
    """Tiny random SAM whose mask logits are scaled up, so that stability means something."""
    return sharpen_random_sam(build_tiny_sam(0, image_size=image_size), gain)


@pytest.mark.parametrize(("n_in", "n_out"), [(64, 256), (256, 1024), (256, 179), (37, 300)])
def test_interp_matrix_is_torch_bilinear(n_in: int, n_out: int) -> None:
    x = torch.randn(1, 1, 3, n_in)
    ref = torch.nn.functional.interpolate(x, (3, n_out), mode="bilinear", align_corners=False)
    ours = x[0, 0].numpy() @ _interp_matrix(n_in, n_out).T
    np.testing.assert_allclose(ours, ref[0, 0].numpy(), atol=1e-5)


@pytest.mark.parametrize("orig", [(256, 256), (300, 210)])
def test_windowed_upsampling_matches_postprocess(orig: tuple[int, int]) -> None:
    from segment_anything.utils.transforms import ResizeLongestSide

    sam = build_tiny_sam(0, image_size=256)
    input_hw = ResizeLongestSide.get_preprocess_shape(orig[0], orig[1], 256)
    rng = np.random.default_rng(1)
    low = rng.normal(-3.0, 0.3, (64, 64)).astype(np.float32)
    low[20:26, 30:37] = 4.0  # one object, the rest well below every threshold
    full = sam.postprocess_masks(torch.from_numpy(low)[None, None], input_hw, orig)[0, 0]
    up = _Upsampler(64, 256, input_hw, orig)
    win, y0, x0 = up.window(low, 20, 25, 30, 36)
    ref = full.numpy()
    np.testing.assert_allclose(win, ref[y0:y0 + win.shape[0], x0:x0 + win.shape[1]], atol=1e-4)
    outside = np.ones(ref.shape, bool)
    outside[y0:y0 + win.shape[0], x0:x0 + win.shape[1]] = False
    assert (ref[outside] <= -1.0).all()  # nothing outside the window reaches a threshold
    assert (win > 0).any()


def _blob_tiny_sam(image_size: int) -> torch.nn.Module:
    """Tiny random SAM whose masks are blobs of embedding cells (as bench_harvest's)."""
    return sharpen_random_sam(build_tiny_sam(0, image_size=image_size), 500.0, blobs=True)


@pytest.mark.parametrize(("shape", "big_window", "nms", "area", "blobs"), [
    ((256, 256), 2.0, 1.0, (0.0, 1e9), False), ((200, 256), 2.0, 1.0, (0.0, 1e9), False),
    ((256, 256), 0.0, 1.0, (0.0, 1e9), False), ((256, 256), 0.25, 0.9, (0.0, 1e9), True),
    ((256, 256), 0.25, 1.0, (1000.0, 4000.0), True),
    ((256, 256), 0.25, 0.95, (1000.0, 8000.0), True)])
def test_fast_generator_reproduces_stock(shape: tuple[int, int], big_window: float,
                                         nms: float, area: tuple[float, float],
                                         blobs: bool) -> None:
    """Pruning off: the same masks as SAM's generator (area filter before NMS in both)."""
    sam = _blob_tiny_sam(256) if blobs else _sharp_tiny_sam(256)
    rgb, _ = render_tissue(np.random.default_rng(0), *shape, mpp=0.5)
    opts = AmgOptions(points_per_side=8 if blobs else 6, points_per_batch=16,
                      pred_iou_thresh=0.0 if blobs else 0.02,
                      stability_score_thresh=0.0 if blobs else 0.55, box_nms_thresh=nms,
                      min_area_um2=area[0], max_area_um2=area[1], point_prior="none",
                      skip_covered=False)
    gen = SamAutoSegmenter(sam, opts)
    gen.big_window = big_window  # 2.0: every mask windowed; 0.0: every mask upsampled whole
    fast = gen.generate(rgb, 0.5)
    stock = StockSamAutoSegmenter(sam, opts).generate(rgb, 0.5)
    assert len(stock) >= 2
    assert len(fast) == len(stock)
    for f, s in zip(fast, stock, strict=True):
        full = np.zeros(shape, bool)
        x, y = f["offset_xy"]
        h, w = f["mask"].shape
        full[y:y + h, x:x + w] = f["mask"]
        seg = np.asarray(s["segmentation"], bool)
        assert (full ^ seg).sum() <= 0.001 * seg.sum() + 2
        assert f["predicted_iou"] == pytest.approx(s["predicted_iou"], abs=1e-5)
        assert f["stability_score"] == pytest.approx(s["stability_score"], abs=1e-3)


def test_stock_reference_drops_sams_empty_masks() -> None:
    """With no area filter SAM's generator returns empty masks (box at the origin); they are
    no objects, so the reference drops them as mfcurate's generator does."""
    from segment_anything.utils.amg import mask_to_rle_pytorch

    masks = torch.zeros((3, 32, 32), dtype=torch.bool)
    masks[1, 4:10, 5:12] = True
    masks[2, 20:30, 2:8] = True
    rles = mask_to_rle_pytorch(masks)
    recs = [{"segmentation": r, "area": int(m.sum()), "predicted_iou": 0.9 - 0.1 * i,
             "bbox": [0, 0, 0, 0] if i == 0 else [5, 4, 7, 6] if i == 1 else [2, 20, 6, 10],
             "stability_score": 1.0, "point_coords": [[0.0, 0.0]]}
            for i, (r, m) in enumerate(zip(rles, masks, strict=True))]

    class _Generator:
        def generate(self, _tile: np.ndarray) -> list[dict[str, object]]:
            return [dict(r) for r in recs]

    opts = AmgOptions(points_per_side=2, min_area_um2=0.0, max_area_um2=1e9)
    seg = StockSamAutoSegmenter(_sharp_tiny_sam(256), opts)
    seg.generator = _Generator()
    for mpp in (None, 0.5):
        out = seg.generate(np.zeros((32, 32, 3), np.uint8), mpp)
        assert sorted(int(np.asarray(a["segmentation"]).sum()) for a in out) == [42, 60]


def test_area_filter_uses_mask_area_and_mpp() -> None:
    sam = _sharp_tiny_sam(256)
    rgb, _ = render_tissue(np.random.default_rng(0), 256, 256, mpp=0.5)
    base = dict(points_per_side=5, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                box_nms_thresh=1.0, point_prior="none", skip_covered=False)
    allm = SamAutoSegmenter(sam, AmgOptions(**base, min_area_um2=0, max_area_um2=1e9)
                            ).generate(rgb, 0.5)
    areas = sorted(r["area"] for r in allm)
    lo, hi = areas[len(areas) // 4], areas[3 * len(areas) // 4]
    for mpp in (0.25, 0.5):
        opts = AmgOptions(**base, min_area_um2=lo * mpp**2, max_area_um2=hi * mpp**2)
        got = SamAutoSegmenter(sam, opts).generate(rgb, mpp)
        assert sorted(r["area"] for r in got) == [a for a in areas if lo <= a <= hi]


def test_factory(tmp_path: Path) -> None:
    ckpt = save_checkpoint(_sharp_tiny_sam(1024), tmp_path / "tiny.pth")
    seg = make_auto_segmenter("sam", checkpoint=ckpt, model_type="tiny", points_per_side=2,
                              pred_iou_thresh=0.0, stability_score_thresh=0.0,
                              max_area_um2=1e9)
    rgb, _ = render_tissue(np.random.default_rng(0), 128, 128, mpp=0.5)
    inst = seg.segment_tile(rgb, 0.5)
    assert inst and all(i.origin == "sam_auto" and i.stability is not None for i in inst)
    assert make_auto_segmenter("classical", max_area_um2=100.0).name == "classical"
    with pytest.raises(UsageError, match="checkpoint"):
        make_auto_segmenter("sam")
    with pytest.raises(UsageError, match="unknown"):
        make_auto_segmenter("sam", checkpoint=ckpt, model_type="tiny", point_per_side=4)
    with pytest.raises(UsageError, match="classical"):
        make_auto_segmenter("classical", points_per_side=64)
    with pytest.raises(UsageError, match="kind"):
        make_auto_segmenter("watershed")


def test_shared_first_layer_decoder_is_sams() -> None:
    from mfcurate.segment.auto_sam import decode_multimask_shared

    sam = build_tiny_sam(0, image_size=256)
    emb = torch.randn(1, 256, 16, 16)
    pts = torch.rand(12, 1, 2) * 256
    with torch.inference_mode():
        sp, de = sam.prompt_encoder(points=(pts, torch.ones(12, 1, dtype=torch.int)),
                                    boxes=None, masks=None)
        pe = sam.prompt_encoder.get_dense_pe()
        ref_masks, ref_iou = sam.mask_decoder(image_embeddings=emb, image_pe=pe,
                                              sparse_prompt_embeddings=sp,
                                              dense_prompt_embeddings=de, multimask_output=True)
        masks, iou = decode_multimask_shared(sam.mask_decoder, emb, pe, sp, de)
    torch.testing.assert_close(masks, ref_masks, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(iou, ref_iou, atol=1e-5, rtol=1e-5)
