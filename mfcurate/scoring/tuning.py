"""Which images the detection threshold is tuned on, and per-member scoring.

The threshold is never tuned on an image a model trained on, nor on the images it scores:

* ``--threshold T``: fixed, nothing tuned;
* ``--tune-split SPLIT`` / ``SOURCE:SPLIT`` or ``--tune-images FILE``: those images, refused
  (:class:`UsageError`) if any member of the run trained on one;
* otherwise, with a run record (``RUN/splits.json``, found through the ``summary.json`` that
  ``detect`` wrote beside its CSV, or given as ``run``): a member is tuned on the validation
  images its training set aside, the ensemble on the validation images *no* member trained
  on (``RUN/val_images.txt``);
* otherwise 0.5, with a note (nothing tells which images were never trained on).

A member's own scores come from the ``member_scores`` column of ``candidates.csv``, so one
``score --per-member DIR`` writes one score file per seed and one for the ensemble, ready
for ``score --compare``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mfcurate.classifier.pool import Member, RunSplits, find_run
from mfcurate.dataset import Dataset, Selection, parse_holdout, select_images
from mfcurate.errors import SourceFormatError, UsageError
from mfcurate.scoring.midog import (
    RADIUS_UM,
    Detections,
    ImageTruth,
    ScoreResult,
    group_detections,
    load_truth,
    read_candidates,
    score_detections,
    tune_threshold,
)


def detections_of(csv_path: Path | str, ds: Dataset, member: int | None = None) -> Detections:
    """The detections of a CSV grouped by image key (``member``: that member's scores)."""
    names, xy, score, members = read_candidates(csv_path)
    if member is not None:
        if members is None:
            raise SourceFormatError(csv_path, "no member_scores column; detect with this "
                                              "version of mfcurate to score members")
        if not 0 <= member < members.shape[1]:
            raise UsageError(f"member {member}: the file holds {members.shape[1]} member(s)")
        score = members[:, member]
    return group_detections(names, xy, score, ds.images().to_pylist(), csv_path)


def _summary_models(csv_path: Path | str) -> list[str]:
    summary = Path(csv_path).parent / "summary.json"
    if not summary.exists():
        return []
    try:
        return [str(m) for m in json.loads(summary.read_text()).get("models", [])]
    except (json.JSONDecodeError, AttributeError):
        return []


def run_context(csv_path: Path | str, run: Path | str | None, member: int | None
                ) -> tuple[RunSplits | None, Member | None]:
    """The run record of the detections and the scored member (None when unknown)."""
    models = _summary_models(csv_path)
    if run is None:
        found = find_run(models) if models else None
        if found is None:
            return None, None
        run = found
    splits = RunSplits.load(run)
    if member is None:
        return splits, None
    m = splits.member_for(models[member]) if member < len(models) else None
    if m is None and member < len(splits.members):
        m = splits.members[member]
    return splits, m


def _tune_keys(ds: Dataset, tune_split: str | None, tune_images: Sequence[str] | None
               ) -> set[str]:
    keys = set(tune_images or ())
    if tune_split:
        src, split = parse_holdout(tune_split) if ":" in tune_split else ("", tune_split)
        sel = Selection(splits=(split,), sources=(src,) if src else None).check(ds)
        keys |= set(select_images(ds, sel, columns=["image_key"]).column("image_key")
                    .to_pylist())
    return keys


def choose_threshold(ds: Dataset, det: Detections, truth: dict[str, ImageTruth], *,
                     threshold: float | None, mpp: float | None,
                     radius_um: float = RADIUS_UM, tune_split: str | None = None,
                     tune_images: Sequence[str] | None = None,
                     splits: RunSplits | None = None, member: Member | None = None,
                     notes: list[str] | None = None) -> tuple[float, str, list[str]]:
    """``(threshold, how it was chosen, the image keys it was tuned on)``."""
    notes = notes if notes is not None else []
    if threshold is not None:
        return float(threshold), "fixed", []
    if tune_split or tune_images:
        keys = _tune_keys(ds, tune_split, tune_images)
        if splits is not None:
            splits.check_tuning(keys, [member] if member else None)
        else:
            notes.append("no run record: cannot check that the tuning images were never "
                         "trained on")
        what = f"split {tune_split}" if tune_split else "the listed images"
    elif splits is not None:
        keys = set(member.val_images if member else splits.untouched_val_images)
        what = (f"the validation images of seed {member.seed}" if member else
                "the validation images no member trained on")
    else:
        notes.append("no run record (RUN/splits.json) for these detections, so nothing "
                     "tells which images were never trained on; give --run, --tune-split "
                     "or --tune-images to tune")
        return 0.5, "default 0.5 (no run record to tune on safely)", []
    overlap = keys & set(truth)
    if overlap:
        notes.append(f"{len(overlap)} tuning image(s) are also scored; they are not used "
                     "for tuning")
    tune = [k for k in keys if k in det.xy and k not in truth]
    if not tune:
        notes.append(f"no detections on {what} ({len(keys)} images); run detect on them "
                     "too (e.g. --images RUN/val_images.txt) to tune")
        return 0.5, f"default 0.5 (no detections on {what})", []
    sel = Selection(image_keys=frozenset(tune), include_duplicates=True)
    val_truth = load_truth(ds, sel, mpp)
    thr, f1 = tune_threshold(val_truth, det, radius_um=radius_um)
    return thr, f"tuned on {what} ({len(val_truth)} images, F1 {f1:.3f})", sorted(val_truth)


def score_members(detections_csv: Path | str, dataset: Path | str, **kwargs: Any
                  ) -> list[tuple[str, ScoreResult]]:
    """Score every ensemble member (``seed-<s>``), then the ensemble (``ensemble``).

    ``kwargs`` are those of :func:`score_detections` (not ``member``).
    """
    _, _, _, members = read_candidates(detections_csv)
    if members is None:
        raise SourceFormatError(detections_csv, "no member_scores column; detect with this "
                                                "version of mfcurate to score members")
    out: list[tuple[str, ScoreResult]] = []
    for k in range(members.shape[1]):
        _, mem = run_context(detections_csv, kwargs.get("run"), k)
        label = f"seed-{mem.seed}" if mem is not None else f"member-{k}"
        out.append((label, score_detections(detections_csv, dataset, member=k, **kwargs)))
    out.append(("ensemble", score_detections(detections_csv, dataset, **kwargs)))
    return out
