"""Detection throughput per tile: segmentation, patch cutting and ensemble classification.

A synthetic 2048 x 2048 image at 0.25 µm/px (dense nuclei, every 1024 px tile on tissue) goes
through ``run_detection`` with 1024 px tiles and 128 px overlap and a 1- and a 5-member
ensemble of randomly initialised models (throughput does not depend on the weights).  The
classical automatic segmenter is used when ``mfcurate.segment.auto`` is available, else a
dark-blob threshold segmenter (printed).  Prints tiles/s and candidates/s on 2 threads, and
the share of the time spent in classification.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mfcurate.classifier.detect import DetectConfig, ImageJob, run_detection
from mfcurate.classifier.model import MaskFusedResNet18
from mfcurate.segment import Instance
from mfcurate.synth import render_tissue
from mfcurate.synth.images import write_png


class _DarkBlobs:
    name = "dark-blobs"

    def segment_tile(self, tile: np.ndarray, mpp: float) -> list[Instance]:
        from scipy import ndimage as ndi

        lab, _ = ndi.label(tile.mean(axis=2) < 170)
        out = []
        for i, sl in enumerate(ndi.find_objects(lab), start=1):
            m = lab[sl] == i
            if sl is not None and m.sum() * mpp * mpp >= 4:
                out.append(Instance(m, (sl[1].start, sl[0].start), 1.0))
        return out


def _segmenter() -> tuple[object, str]:
    import importlib.util

    if importlib.util.find_spec("mfcurate.segment.auto") is not None:
        return {"kind": "classical"}, "classical (mfcurate.segment.auto)"
    return _DarkBlobs(), "dark-blob threshold (mfcurate.segment.auto not available)"


def main() -> None:
    torch.set_num_threads(2)
    seg, seg_name = _segmenter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rgb, planted = render_tissue(np.random.default_rng(0), 2048, 2048, mpp=0.25,
                                     n_mitotic=20, n_mitotic_like=20)
        write_png(root / "slide.png", rgb, 0.25)
        models = []
        for k in range(5):
            torch.manual_seed(k)
            p = root / f"m{k}.pt"
            torch.save({"state_dict": MaskFusedResNet18().state_dict(), "use_mask": True,
                        "patch": {"size_px": 64, "mpp": 0.25, "disk_radius_um": 4.0}}, p)
            models.append(p)
        cfg = DetectConfig(tile=1024, overlap=128, all_tiles=True)
        job = [ImageJob("slide.png", root / "slide.png")]
        n_tiles = 9  # 2048 px with 1024 px tiles and >= 128 px overlap: 3 x 3
        rows = []
        for members in (1, 5):
            t = time.perf_counter()
            rep = run_detection(job, models[:members], root / f"out{members}", cfg=cfg,
                                segmenter=seg)  # type: ignore[arg-type]
            dt = time.perf_counter() - t
            n = rep.per_image["slide.png"]["candidates"]
            rows.append((members, dt, n))
    print(f"image 2048x2048 px at 0.25 µm/px, {len(planted)} planted objects; "
          f"tiles 1024 px (+128 overlap): {n_tiles}; segmenter: {seg_name}; 2 threads")
    for members, dt, n in rows:
        print(f"{members} model(s): {dt:.1f} s, {n_tiles / dt:.2f} tiles/s, "
              f"{dt / n_tiles:.2f} s/tile, {n / dt:,.0f} candidates/s ({n} candidates)")
    (_, t1, n1), (_, t5, _) = rows
    cls_per_member = (t5 - t1) / 4
    print(f"classification ≈ {cls_per_member / t1:.0%} of the 1-model time per member "
          f"({n1 / max(cls_per_member, 1e-9):,.0f} patches/s per member)")


if __name__ == "__main__":
    main()
