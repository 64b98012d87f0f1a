"""Recipe steps ``build-patches``, ``train-classifier``, ``detect`` and ``score``.

They hand their products to later steps through ``ctx.state``: ``patch_store`` (folder),
``checkpoints`` (the members' ``model.pt`` files), ``detections_csv`` / ``candidates_csv``
and ``detected_images`` (image keys detection ran on), and ``score`` (the score dict).

``preset``: ``"paper"`` uses the documented defaults (64 px at 0.25 µm/px, 30 epochs ...);
``"quick"`` a CPU-sized schedule (32 px at 0.5 µm/px, the same 16 µm field of view, 3 short
epochs, two test images) for the demo; ``"auto"`` (default) is ``paper`` on a machine with a
GPU and ``quick`` without one.  Explicit options always win over the preset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mfcurate.pipelines.steps import StepContext, step

_QUICK: dict[str, dict[str, Any]] = {
    "patches": {"size_px": 32, "mpp": 0.5},
    "train": {"epochs": 3, "samples_per_epoch": 256, "batch_size": 32, "balance": "sampler",
              "seeds": 1},
    "detect": {"max_images": 2, "tile": 512, "overlap": 64},
}


def _preset(preset: str) -> str:
    if preset == "auto":
        import torch

        return "paper" if torch.cuda.is_available() else "quick"
    if preset not in ("paper", "quick"):
        raise ValueError(f"preset must be auto, paper or quick (got {preset!r})")
    return preset


def _opts(preset: str, group: str, given: dict[str, Any]) -> dict[str, Any]:
    base = dict(_QUICK[group]) if _preset(preset) == "quick" else {}
    base.update({k: v for k, v in given.items() if v is not None})
    return base


def _path(ctx: StepContext, p: str) -> Path:
    return Path(p) if Path(p).is_absolute() else ctx.work_dir / p


@step("build-patches")
def build_patches_step(ctx: StepContext, *, out: str = "patches", size_px: int | None = None,
                       mpp: float | None = None, disk_radius_um: float = 4.0,
                       include_disk: bool = False, preset: str = "auto",
                       **_: Any) -> dict[str, Any]:
    """Cut the patch store of ``ctx.dataset`` into ``work_dir/out``."""
    from mfcurate.classifier.patches import PatchConfig, build_patch_store

    o = _opts(preset, "patches", {"size_px": size_px, "mpp": mpp})
    cfg = PatchConfig(size_px=int(o.get("size_px", 64)), mpp=float(o.get("mpp", 0.25)),
                      disk_radius_um=disk_radius_um)
    rep = build_patch_store(ctx.dataset, _path(ctx, out), cfg, workers=ctx.workers,
                            scheduler=ctx.scheduler, include_disk=include_disk)
    ctx.state["patch_store"] = str(rep.out)
    ctx.console.print(f"build-patches: {rep.summary()}", markup=False)
    return {"patch_store": str(rep.out), "images": rep.n_images, "patches": rep.n_patches,
            "mitotic_figures": rep.n_positive, "disk_masks": rep.n_disk,
            "rejected_skipped": rep.n_rejected_skipped, "disk_skipped": rep.n_disk_skipped,
            "in_figure_box_skipped": rep.n_in_figure_box_skipped,
            "skipped_by_label": rep.skipped_by_label, "size_px": cfg.size_px, "mpp": cfg.mpp}


@step("train-classifier")
def train_classifier_step(ctx: StepContext, *, out: str = "classifier",
                          patch_store: str | None = None, preset: str = "auto",
                          **options: Any) -> dict[str, Any]:
    """Train the ensemble on the patch store (``ctx.state["patch_store"]`` by default).

    Every :class:`~mfcurate.classifier.train.TrainConfig` field is an option.
    """
    from dataclasses import fields

    from mfcurate.classifier.train import TrainConfig, train_ensemble

    store = patch_store or ctx.state.get("patch_store") or str(ctx.work_dir / "patches")
    names = {f.name for f in fields(TrainConfig)}
    given = {k: v for k, v in options.items() if k in names}
    o = _opts(preset, "train", given)
    o.setdefault("seed", ctx.seed)
    cfg = TrainConfig(**o)
    results = train_ensemble(store, _path(ctx, out), cfg, console=ctx.console)
    ctx.state["checkpoints"] = [str(r.model_path) for r in results]
    ctx.state["run_dir"] = str(_path(ctx, out))
    return {"run": str(_path(ctx, out)), "members": len(results),
            "best_loss": [r.best_val_loss for r in results], "epochs": cfg.epochs,
            "use_mask": cfg.use_mask}


@step("detect")
def detect_step(ctx: StepContext, *, out: str = "detections", split: str = "test",
                max_images: int | None = None, tile: int | None = None,
                overlap: int | None = None, threshold: float = 0.5, all_tiles: bool = False,
                sam_checkpoint: str | None = None, sam_model: str = "vit_b",
                device: str = "cpu", preset: str = "auto", with_val: bool = True,
                **_: Any) -> dict[str, Any]:
    """Detect on the images of ``split`` (plus ``val`` images, for threshold tuning)."""
    from mfcurate.classifier.detect import DetectConfig, dataset_jobs, run_detection
    from mfcurate.errors import DatasetError

    o = _opts(preset, "detect", {"max_images": max_images, "tile": tile, "overlap": overlap})
    models = ctx.state.get("checkpoints") or [str(ctx.work_dir / "classifier")]
    jobs = dataset_jobs(ctx.dataset, split, o.get("max_images"))
    if with_val and split != "val":
        try:
            jobs += dataset_jobs(ctx.dataset, "val", o.get("max_images"))
        except DatasetError:  # no validation images: nothing to tune the threshold on
            pass
    seg: dict[str, Any] = {"kind": "sam" if sam_checkpoint else "classical"}
    if sam_checkpoint:
        seg.update(checkpoint=sam_checkpoint, model_type=sam_model, device=device)
    cfg = DetectConfig(tile=int(o.get("tile", 1024)), overlap=int(o.get("overlap", 128)),
                       threshold=threshold, all_tiles=all_tiles, device=device)
    rep = run_detection(jobs, models, _path(ctx, out), cfg=cfg, segmenter=seg,
                        workers=ctx.workers, scheduler=ctx.scheduler)
    ctx.state["detections_csv"] = str(rep.detections_csv)
    ctx.state["candidates_csv"] = str(rep.candidates_csv)
    ctx.state["detected_images"] = [j.name for j in jobs]
    return {"out": str(rep.out), "images": len(jobs),
            "mitotic_figures": {k: v["mitotic_figures"] for k, v in rep.per_image.items()},
            "count_per_10hpf": {k: (v["count_per_10hpf"] or {}).get("count")
                                for k, v in rep.per_image.items()}}


@step("score")
def score_step(ctx: StepContext, *, detections: str | None = None, split: str = "test",
               threshold: float | None = None, mpp: float | None = None,
               out: str = "score", **_: Any) -> dict[str, Any]:
    """Score the detections of the ``detect`` step (all candidates, threshold tuned on val)."""
    from mfcurate.dataset import atomic_write_json
    from mfcurate.scoring import score_detections
    from mfcurate.scoring.plots import plot_f1_per_tumour, plot_pr_curve

    det = detections or ctx.state.get("candidates_csv") or \
        str(ctx.work_dir / "detections" / "candidates.csv")
    keys = ctx.state.get("detected_images")
    summary = Path(det).parent / "summary.json"
    if keys is None and summary.exists():  # a rerun that skipped the detect step
        import json

        keys = list(json.loads(summary.read_text())["images"])
    res = score_detections(det, ctx.dataset, split=split, threshold=threshold, mpp=mpp,
                           image_keys=keys)
    out_dir = _path(ctx, out)
    atomic_write_json(out_dir / "score.json", res.to_dict())
    plot_f1_per_tumour(res, out_dir / "f1_per_tumour.png")
    plot_pr_curve(res, out_dir / "pr_curve.png")
    ctx.state["score"] = res.to_dict()
    return {"overall": res.overall.to_dict(), "threshold": res.threshold,
            "threshold_source": res.threshold_source, "images": len(res.per_image),
            "out": str(out_dir)}
