"""Recipe steps ``build-patches``, ``train-classifier``, ``detect`` and ``score``.

They hand their products to later steps through ``ctx.state``: ``patch_store`` (folder),
``checkpoints`` (the members' ``model.pt`` files), ``detections_csv`` / ``candidates_csv``
and ``detected_images`` (image keys detection ran on), and ``score`` (the score dict).

``preset``: ``"paper"`` (default, or the recipe's ``[run] preset``) uses the documented
defaults (64 px at 0.25 µm/px, 30 epochs, 5 seeds ...); ``"quick"`` a CPU-sized schedule (32 px at
0.5 µm/px, the same 16 µm field of view, 3 short epochs, 2 seeds, two test images) for the demo and
``mfcurate run --quick``.  Nothing drops to the quick preset silently: ``"auto"`` (quick
without a GPU) must be asked for.  Explicit options always win over the preset.

Partitions follow the paper (:mod:`mfcurate.classifier.pool`): ``holdout`` (default
``midog++:test``) and the filters ``only_sources``, ``species``, ``tumour_types``, ``labels``;
``exclude_parts`` reads the dataset without some parts (``["review"]``: the masks as SAM gave
them; ``["harvest", "harvest-fill"]``: no harvested objects).  A step whose recipe name has a
label (``[steps."score:rgb"]``) files its score files under that label for ``compare``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mfcurate.pipelines.steps import StepContext, step
from mfcurate.segment.figure_parts import DEFAULT_PART_GAP_UM

#: The paper's values where they differ from the library defaults (5 seeds per run).
_PAPER: dict[str, dict[str, Any]] = {"patches": {}, "train": {"seeds": 5}, "detect": {}}
#: The CPU-sized schedule (2 seeds, so an ablation's comparison has two runs a side).
_QUICK: dict[str, dict[str, Any]] = {
    "patches": {"size_px": 32, "mpp": 0.5},
    "train": {"epochs": 3, "samples_per_epoch": 256, "batch_size": 32, "balance": "sampler",
              "seeds": 2},
    "detect": {"max_images": 2, "tile": 512, "overlap": 64},
}


def _preset(ctx: StepContext, preset: str | None) -> str:
    preset = preset or str(ctx.state.get("preset") or "paper")
    if preset == "auto":
        import torch

        return "paper" if torch.cuda.is_available() else "quick"
    if preset not in ("paper", "quick"):
        raise ValueError(f"preset must be paper, quick or auto (got {preset!r})")
    return preset


def _opts(ctx: StepContext, preset: str | None, group: str, given: dict[str, Any]
          ) -> dict[str, Any]:
    base = dict((_QUICK if _preset(ctx, preset) == "quick" else _PAPER)[group])
    base.update({k: v for k, v in given.items() if v is not None})
    return base


def _path(ctx: StepContext, p: str) -> Path:
    return Path(p) if Path(p).is_absolute() else ctx.work_dir / p


def _label(ctx: StepContext) -> str:
    return str(ctx.state.get("step_label") or "")


def _holdout(ctx: StepContext, holdout: list[str] | None) -> list[str] | None:
    """The step's holdout, else the recipe's ``[run] holdout`` (None: the default)."""
    if holdout is not None:
        return list(holdout)
    run = ctx.state.get("holdout")
    return list(run) if run is not None else None


def _test_set(ctx: StepContext, **given: list[str] | None) -> dict[str, Any]:
    """The step's image filters, else the recipe's ``[run] test_set``, as Selection keys."""
    run = dict(ctx.state.get("test_set") or {})
    bad = sorted(set(run) - {"only_sources", "species", "tumour_types"})
    if bad:
        raise ValueError(f"[run] test_set: unknown key(s) {', '.join(bad)} (only_sources, "
                         "species, tumour_types)")
    vals = {k: v if v is not None else run.get(k) for k, v in given.items()}
    return {"sources": vals.get("only_sources"), "species": vals.get("species"),
            "tumour_types": vals.get("tumour_types")}


@step("build-patches")
def build_patches_step(ctx: StepContext, *, out: str = "patches", size_px: int | None = None,
                       mpp: float | None = None, disk_radius_um: float = 4.0,
                       include_disk: bool = False,
                       preset: str | None = None, holdout: list[str] | None = None,
                       only_sources: list[str] | None = None,
                       species: list[str] | None = None,
                       tumour_types: list[str] | None = None,
                       labels: list[str] | None = None,
                       exclude_parts: list[str] | None = None) -> dict[str, Any]:
    """Cut the patch store of ``ctx.dataset`` (minus the holdout) into ``work_dir/out``."""
    from dataclasses import replace

    from mfcurate.classifier.patches import PatchConfig, build_patch_store
    from mfcurate.classifier.pool import pool_selection
    from mfcurate.dataset import Dataset

    o = _opts(ctx, preset, "patches", {"size_px": size_px, "mpp": mpp})
    cfg = PatchConfig(size_px=int(o.get("size_px", 64)), mpp=float(o.get("mpp", 0.25)),
                      disk_radius_um=disk_radius_um)
    ds = Dataset.open(ctx.dataset)
    sel, notes = pool_selection(ds, {"sources": only_sources, "species": species,
                                     "tumour_types": tumour_types, "labels": labels},
                                _holdout(ctx, holdout))
    sel = replace(sel, exclude_parts=tuple(exclude_parts or ()))
    for note in notes:
        ctx.console.print(f"note: {note}", markup=False)
    rep = build_patch_store(ctx.dataset, _path(ctx, out), cfg, selection=sel,
                            workers=ctx.workers, scheduler=ctx.scheduler,
                            include_disk=include_disk)
    ctx.state["patch_store"] = str(rep.out)
    ctx.console.print(f"build-patches: {rep.summary()}", markup=False)
    return {"patch_store": str(rep.out), "images": rep.n_images, "patches": rep.n_patches,
            "mitotic_figures": rep.n_positive, "disk_masks": rep.n_disk,
            "rejected_skipped": rep.n_rejected_skipped, "disk_skipped": rep.n_disk_skipped,
            "in_figure_box_skipped": rep.n_in_figure_box_skipped,
            "skipped_by_label": rep.skipped_by_label, "size_px": cfg.size_px, "mpp": cfg.mpp,
            "holdout": [f"{a}:{b}" for a, b in sel.holdout],
            "exclude_parts": list(sel.exclude_parts)}


@step("train-classifier")
def train_classifier_step(ctx: StepContext, *, out: str = "classifier",
                          patch_store: str | None = None, preset: str | None = None,
                          only_sources: list[str] | None = None,
                          **options: Any) -> dict[str, Any]:
    """Train the ensemble on the patch store (``ctx.state["patch_store"]`` by default).

    Every :class:`~mfcurate.classifier.train.TrainConfig` field is an option (``holdout``,
    ``species``, ``max_train_mf`` ...); ``only_sources`` is its ``sources``.
    """
    from dataclasses import fields

    from mfcurate.classifier.train import TrainConfig, train_ensemble

    store = patch_store or ctx.state.get("patch_store") or str(ctx.work_dir / "patches")
    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ValueError(f"train-classifier: unknown option(s) {', '.join(unknown)}")
    o = _opts(ctx, preset, "train", {**options, "sources": only_sources})
    o["holdout"] = _holdout(ctx, o.get("holdout"))
    o.setdefault("seed", ctx.seed)
    cfg = TrainConfig(**o)
    run = _path(ctx, out)
    results = train_ensemble(store, run, cfg, console=ctx.console, dataset=ctx.dataset)
    ctx.state["checkpoints"] = [str(r.model_path) for r in results]
    ctx.state["run_dir"] = str(run)
    return {"run": str(run), "members": len(results),
            "best_loss": [r.best_val_loss for r in results], "epochs": cfg.epochs,
            "use_mask": cfg.use_mask,
            "train_mitotic_figures": [r.n_train_positive for r in results]}


@step("detect")
def detect_step(ctx: StepContext, *, out: str = "detections", split: str = "test",
                max_images: int | None = None, tile: int | None = None,
                overlap: int | None = None, threshold: float = 0.5, all_tiles: bool = False,
                sam_checkpoint: str | None = None, sam_model: str = "vit_h",
                device: str | None = None, preset: str | None = None, with_val: bool = True,
                only_sources: list[str] | None = None, species: list[str] | None = None,
                tumour_types: list[str] | None = None,
                part_gap_um: float = DEFAULT_PART_GAP_UM) -> dict[str, Any]:
    """Detect on the images of ``split`` (plus the run's validation images, for tuning).

    ``part_gap_um``: figure candidates closer than this (µm) are one multi-part figure.
    """
    from mfcurate.classifier.detect import DetectConfig, dataset_jobs, run_detection
    from mfcurate.dataset import Selection

    o = _opts(ctx, preset, "detect", {"max_images": max_images, "tile": tile,
                                      "overlap": overlap})
    models = ctx.state.get("checkpoints") or [str(ctx.work_dir / "classifier")]
    sel = Selection.from_options(**_test_set(ctx, only_sources=only_sources, species=species,
                                             tumour_types=tumour_types))
    jobs = dataset_jobs(ctx.dataset, split, o.get("max_images"), selection=sel)
    if with_val:
        jobs += _validation_jobs(ctx, {j.name for j in jobs})
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    seg: dict[str, Any] = {"kind": "sam" if sam_checkpoint else "classical"}
    if sam_checkpoint:
        seg.update(checkpoint=sam_checkpoint, model_type=sam_model, device=device)
    cfg = DetectConfig(tile=int(o.get("tile", 1024)), overlap=int(o.get("overlap", 128)),
                       threshold=threshold, all_tiles=all_tiles, device=device,
                       part_gap_um=part_gap_um)
    rep = run_detection(jobs, models, _path(ctx, out), cfg=cfg, segmenter=seg,
                        workers=ctx.workers, scheduler=ctx.scheduler)
    ctx.state["detections_csv"] = str(rep.detections_csv)
    ctx.state["candidates_csv"] = str(rep.candidates_csv)
    ctx.state["detected_images"] = [j.name for j in jobs]
    return {"out": str(rep.out), "images": len(jobs),
            "mitotic_figures": {k: v["mitotic_figures"] for k, v in rep.per_image.items()},
            "count_per_10hpf": {k: (v["count_per_10hpf"] or {}).get("count")
                                for k, v in rep.per_image.items()}}


def _validation_jobs(ctx: StepContext, have: set[str]) -> list[Any]:
    """Jobs for the validation images the run's members set aside (each tunes on its own)."""
    from mfcurate.classifier.detect import dataset_jobs
    from mfcurate.classifier.pool import RunSplits
    from mfcurate.dataset import Selection
    from mfcurate.errors import DatasetError

    run = ctx.state.get("run_dir")
    keys: set[str] = set()
    if run and (Path(run) / "splits.json").exists():
        keys = set().union(*(m.val_images for m in RunSplits.load(run).members))
    keys -= have
    if not keys:
        return []
    try:
        return dataset_jobs(ctx.dataset, "all",
                            selection=Selection(image_keys=frozenset(keys)))
    except DatasetError:  # the validation images are duplicates or gone
        return []


def _has_member_scores(csv_path: str) -> bool:
    with open(csv_path, encoding="utf-8") as f:
        return "member_scores" in f.readline()


@step("score")
def score_step(ctx: StepContext, *, detections: str | None = None, split: str = "test",
               threshold: float | None = None, mpp: float | None = None,
               out: str = "score", per_member: bool = True,
               only_sources: list[str] | None = None, species: list[str] | None = None,
               tumour_types: list[str] | None = None) -> dict[str, Any]:
    """Score the ``detect`` step's candidates: each member, then the ensemble.

    The threshold is tuned on images no model trained on (:mod:`mfcurate.scoring.tuning`).
    Writes ``out/score.json`` (the ensemble), ``out/members/seed-<s>.json`` and the plots.
    """
    import json

    from mfcurate.dataset import Selection, atomic_write_json
    from mfcurate.scoring import score_detections
    from mfcurate.scoring.plots import plot_f1_per_tumour, plot_pr_curve
    from mfcurate.scoring.tuning import score_members

    det = detections or ctx.state.get("candidates_csv") or \
        str(ctx.work_dir / "detections" / "candidates.csv")
    keys = ctx.state.get("detected_images")
    summary = Path(det).parent / "summary.json"
    if keys is None and summary.exists():  # a rerun that skipped the detect step
        keys = list(json.loads(summary.read_text())["images"])
    sel = Selection.from_options(**_test_set(ctx, only_sources=only_sources, species=species,
                                             tumour_types=tumour_types))
    kw: dict[str, Any] = {"split": split, "threshold": threshold, "mpp": mpp,
                          "image_keys": keys, "selection": sel,
                          "run": ctx.state.get("run_dir")}
    out_dir = _path(ctx, out)
    member_files: list[str] = []
    members: dict[str, float] = {}
    if per_member and _has_member_scores(det):
        for label, res_m in score_members(det, ctx.dataset, **kw):
            if label == "ensemble":
                continue
            path = out_dir / "members" / f"{label}.json"
            atomic_write_json(path, res_m.to_dict())
            member_files.append(str(path))
            members[label] = res_m.overall.f1
    res = score_detections(det, ctx.dataset, **kw)
    atomic_write_json(out_dir / "score.json", res.to_dict())
    plot_f1_per_tumour(res, out_dir / "f1_per_tumour.png")
    plot_pr_curve(res, out_dir / "pr_curve.png")
    ctx.state["score"] = res.to_dict()
    ctx.state.setdefault("score_files", {})[_label(ctx) or "score"] = member_files
    for label, f1 in members.items():
        ctx.console.print(f"{label}: F1 {f1:.3f}", markup=False)
    return {"overall": res.overall.to_dict(), "threshold": res.threshold,
            "threshold_source": res.threshold_source, "images": len(res.per_image),
            "member_f1": members, "out": str(out_dir)}
