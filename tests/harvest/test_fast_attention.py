"""The fused image-encoder attention gives segment_anything's embeddings and masks."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from segment_anything.modeling.image_encoder import Attention, get_rel_pos

from mfcurate.segment.auto import make_auto_segmenter
from mfcurate.segment.auto_sam import AmgOptions, SamAutoSegmenter, StockSamAutoSegmenter
from mfcurate.segment.box import make_box_segmenter
from mfcurate.segment.fast_attention import (
    encoder_bf16,
    fast_attention_forward,
    is_patched,
    patch_image_encoder,
    rel_pos_table,
    set_encoder_bf16,
    unpatch_image_encoder,
)
from mfcurate.segment.sam_models import build_tiny_sam, save_checkpoint, sharpen_random_sam
from mfcurate.segment.spec import SegmenterSpec, auto_segmenter, box_segmenter, clear_cache
from mfcurate.synth.render import render_tissue

torch.set_num_threads(1)


def _tiny(image_size: int) -> torch.nn.Module:
    """Tiny SAM with non-zero rel-pos tables (zero tables would hide a wrong bias)."""
    sam = build_tiny_sam(0, image_size=image_size)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in sam.image_encoder.named_parameters():
            if "rel_pos" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return sam


@pytest.mark.parametrize(("size", "length"), [(7, 13), (16, 31), (14, 27), (16, 9)])
def test_rel_pos_table_is_sams(size: int, length: int) -> None:
    table = torch.randn(length, 8)
    np.testing.assert_allclose(rel_pos_table(size, table).numpy(),
                               get_rel_pos(size, size, table).numpy(), atol=1e-6)


@pytest.mark.parametrize("use_rel_pos", [True, False])
@pytest.mark.parametrize("chunk", [10_000, 100, 7])
def test_attention_block_matches_stock(use_rel_pos: bool, chunk: int) -> None:
    torch.manual_seed(0)
    block = Attention(32, num_heads=4, use_rel_pos=use_rel_pos, input_size=(9, 11)).eval()
    if use_rel_pos:
        with torch.no_grad():
            block.rel_pos_h.normal_()
            block.rel_pos_w.normal_()
    x = torch.randn(3, 9, 11, 32)
    with torch.inference_mode():
        ref = block(x)
        out = fast_attention_forward(block, x, query_chunk=chunk)
    assert out.shape == ref.shape
    assert float((out - ref).abs().max()) < 1e-5 * float(ref.abs().max())


@pytest.mark.parametrize("chunk", [4096, 1000])
def test_embeddings_match_stock(chunk: int) -> None:
    """1024 px input (4,096 tokens in the global block), chunked or not."""
    sam = _tiny(1024)
    x = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = sam.image_encoder(x)
        assert patch_image_encoder(sam, query_chunk=chunk) == len(sam.image_encoder.blocks)
        assert is_patched(sam)
        out = sam.image_encoder(x)
        assert unpatch_image_encoder(sam) == len(sam.image_encoder.blocks)
        assert not is_patched(sam)
        again = sam.image_encoder(x)
    assert float((out - ref).abs().max()) < 1e-4 * float(ref.abs().max())
    assert torch.equal(again, ref)  # unpatched: the stock forward again


def test_generator_masks_identical_with_fused_encoder() -> None:
    """Pruning off: our generator on the fused encoder keeps stock's masks on the stock one."""
    sam = sharpen_random_sam(_tiny(256), 500.0, blobs=True)  # blob-shaped, decisive masks
    fused = copy.deepcopy(sam)
    patch_image_encoder(fused)
    rgb, _ = render_tissue(np.random.default_rng(0), 256, 256, mpp=0.5)
    opts = AmgOptions(points_per_side=8, points_per_batch=16, pred_iou_thresh=0.0,
                      stability_score_thresh=0.0, box_nms_thresh=0.9, min_area_um2=0.0,
                      max_area_um2=1e9, point_prior="none", skip_covered=False)
    ours = SamAutoSegmenter(fused, opts).generate(rgb, 0.5)
    stock = StockSamAutoSegmenter(sam, opts).generate(rgb, 0.5)
    assert not is_patched(sam) and len(stock) >= 2
    assert len(ours) == len(stock)
    for f, s in zip(ours, stock, strict=True):
        full = np.zeros(rgb.shape[:2], bool)
        x, y = f["offset_xy"]
        h, w = f["mask"].shape
        full[y:y + h, x:x + w] = f["mask"]
        assert (full ^ np.asarray(s["segmentation"], bool)).sum() == 0
        assert f["predicted_iou"] == pytest.approx(s["predicted_iou"], abs=1e-4)


def test_factories_and_spec_apply_it(tmp_path: Path) -> None:
    ckpt = save_checkpoint(build_tiny_sam(0), tmp_path / "tiny.pth")
    kw = dict(checkpoint=ckpt, model_type="tiny")
    assert is_patched(make_auto_segmenter("sam", **kw).sam)  # type: ignore[attr-defined]
    assert not is_patched(make_auto_segmenter("sam", fast_encoder=False,
                                              **kw).sam)  # type: ignore[attr-defined]
    stock = make_auto_segmenter("sam_stock", **kw)
    assert not is_patched(stock.generator.predictor.model)  # type: ignore[attr-defined]
    assert is_patched(make_box_segmenter("sam", **kw).sam)  # type: ignore[attr-defined]
    off = SegmenterSpec.make("sam", ckpt, "tiny", "cpu", fast_encoder=False)
    assert SegmenterSpec.from_dict(off.to_dict()) == off and not off.fast_encoder
    on = SegmenterSpec.make("sam", ckpt, "tiny", "cpu")
    assert on.fast_encoder and on.key() != off.key()
    clear_cache()
    assert is_patched(auto_segmenter(on).sam)  # type: ignore[attr-defined]
    assert not is_patched(box_segmenter(off).sam)  # type: ignore[attr-defined]
    clear_cache()


def test_bf16_is_opt_in_and_scoped() -> None:
    """bf16 autocast only inside the encoder; float32 embeddings out; removable."""
    sam = _tiny(256)
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = sam.image_encoder(x)
        patch_image_encoder(sam)
        assert not encoder_bf16(sam) and set_encoder_bf16(sam) == 1 and encoder_bf16(sam)
        out = sam.image_encoder(x)
        assert not torch.is_autocast_enabled("cpu")
        with pytest.raises(RuntimeError):
            sam.image_encoder(torch.zeros(1, 5, 256, 256))  # wrong channels: it raises ...
        assert not torch.is_autocast_enabled("cpu")  # ... and autocast is left all the same
        assert set_encoder_bf16(sam, False) == 1 and not encoder_bf16(sam)
        unpatch_image_encoder(sam)
        again = sam.image_encoder(x)
    assert out.dtype == torch.float32
    rel = float((out - ref).abs().max()) / float(ref.abs().max())
    assert 1e-5 < rel < 5e-2  # bf16 rounding: close, but not the float32 embedding
    assert torch.equal(again, ref)


def test_spec_bf16_opt_in(tmp_path: Path) -> None:
    ckpt = save_checkpoint(build_tiny_sam(0), tmp_path / "tiny.pth")
    spec = SegmenterSpec.make("sam", ckpt, "tiny", "cpu")
    assert not spec.encoder_bf16
    bf = SegmenterSpec.make("sam", ckpt, "tiny", "cpu", encoder_bf16=True)
    assert SegmenterSpec.from_dict(bf.to_dict()) == bf and bf.key() != spec.key()
    clear_cache()
    assert not encoder_bf16(auto_segmenter(spec).sam)  # type: ignore[attr-defined]
    assert encoder_bf16(box_segmenter(bf).sam)  # type: ignore[attr-defined]
    assert not encoder_bf16(make_auto_segmenter("sam_stock", checkpoint=ckpt,
                                                model_type="tiny", encoder_bf16=True
                                                ).generator.predictor.model)  # type: ignore
    clear_cache()
