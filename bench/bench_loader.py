"""Training input pipeline vs training step rate, on 2 CPU threads.

Builds a patch store at the paper's geometry (64 x 64 px at 0.25 µm/px) from synthetic images,
then measures in one process:

* loader: samples/s of the training input pipeline (memory-mapped read through the batch
  DataLoader + flips/rotations + stain augmentation + normalisation, i.e. everything before
  the model);
* step: samples/s of the model's own training step (forward, backward, AdamW) on the same
  batches, already prepared.

The loader must not be the bottleneck: ratio = loader / step >= 2.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mfcurate.classifier.patches import PatchConfig, PatchStore, build_patch_store
from mfcurate.classifier.train import MitosisModule, TrainConfig, make_loader
from mfcurate.synth.classifier_data import SyntheticSplit, build_classifier_dataset

BATCH = 64
STEPS = 12


def main() -> None:
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        ds = build_classifier_dataset(Path(tmp), splits=SyntheticSplit(train=4, test=0),
                                      size_px=512, mpp=0.25, n_mitotic=8, n_mitotic_like=8)
        rep = build_patch_store(ds, cfg=PatchConfig(size_px=64, mpp=0.25))
        store = PatchStore(rep.out)
        pos = store.positions()
        cfg = TrainConfig(batch_size=BATCH, balance="sampler")
        module = MitosisModule(asdict(cfg), [1.0, 1.0])
        loader = make_loader(store, pos, BATCH, train=True, balance="sampler",
                             samples_per_epoch=BATCH * STEPS)
        # warm-up
        for rgb, mask, _y in loader:
            module.prepare(rgb, mask, train=True)
            break
        t = time.perf_counter()
        prepared = []
        n = 0
        for rgb, mask, y in loader:
            x, m = module.prepare(rgb, mask, train=True)
            prepared.append((x, m, y))
            n += len(y)
        loader_rate = n / (time.perf_counter() - t)

        opt = torch.optim.AdamW(module.parameters(), lr=1e-3)
        module.train()

        def step(x: torch.Tensor, m: torch.Tensor, y: torch.Tensor) -> None:
            opt.zero_grad()
            loss = module._loss(module(x, m), y)
            loss.backward()
            opt.step()

        step(*prepared[0])  # warm-up
        t = time.perf_counter()
        n = 0
        for x, m, y in prepared:
            step(x, m, y)
            n += len(y)
        step_rate = n / (time.perf_counter() - t)
    print(f"patch store: {len(store)} patches of 64x64 px at 0.25 µm/px, batch {BATCH}, "
          f"2 threads")
    print(f"input pipeline (read + augmentation): {loader_rate:,.0f} samples/s")
    print(f"training step (fwd + bwd + AdamW):    {step_rate:,.0f} samples/s")
    print(f"ratio loader/step: {loader_rate / step_rate:.1f} (must be >= 2)")


if __name__ == "__main__":
    main()
