"""``register-phh3`` over a folder of pairs (executor, resumable) and its recipe/demo step.

A *pairs folder* is either

* a ``pairs.csv`` with columns ``he``, ``phh3`` (paths relative to the folder) and optional
  ``pair_id``, ``tumour_type``, ``species``; or
* one sub-folder per pair holding one H&E slide whose file stem is ``he`` or ends in ``_he`` /
  ``-he`` and one pHH3 slide whose stem is ``phh3`` or ends in ``_phh3`` / ``-phh3``; the
  sub-folder name is the pair id.

Each pair is one executor task: its output folder is written atomically by
:func:`~mfcurate.registration.pair.register_pair` and the task's row records the outcome, so an
interrupted batch resumes where it stopped; failed pairs are retried on the next run.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mfcurate.errors import MfcurateError, UsageError
from mfcurate.pipelines.steps import StepContext, step
from mfcurate.registration.pair import RegisterOptions, register_pair
from mfcurate.segment.figure_parts import DEFAULT_PART_GAP_UM
from mfcurate.segment.spec import DEFAULT_SAM_MODEL

SLIDE_SUFFIXES = {".svs", ".tif", ".tiff", ".ndpi", ".mrxs", ".scn", ".vms", ".bif", ".png",
                  ".jpg", ".jpeg"}

SUMMARY_SCHEMA = pa.schema([
    ("pair_id", pa.string()), ("status", pa.string()), ("message", pa.string()),
    ("n_objects", pa.int64()), ("n_flagged", pa.int64()), ("seconds", pa.float64()),
    ("channel", pa.string()), ("counterstain", pa.string()),
])


@dataclass(frozen=True)
class PairSpec:
    """One pair to register."""

    pair_id: str
    he: Path
    phh3: Path
    tumour_type: str | None = None
    species: str | None = None


def _is(stem: str, word: str) -> bool:
    s = stem.lower()
    return s == word or s.endswith("_" + word) or s.endswith("-" + word)


def find_pairs(folder: Path | str) -> list[PairSpec]:
    """List the pairs of a pairs folder (see the module docstring).

    Raises:
        UsageError: the folder does not exist or holds no pair.
        SourceFormatError: ``pairs.csv`` is malformed or a sub-folder is ambiguous.
    """
    from mfcurate.errors import SourceFormatError

    root = Path(folder)
    if not root.is_dir():
        raise UsageError(f"pairs folder {root} does not exist")
    table = root / "pairs.csv"
    pairs: list[PairSpec] = []
    if table.exists():
        with table.open(newline="") as f:
            rows = list(csv.DictReader(f))
        for i, r in enumerate(rows, start=2):
            if not r.get("he") or not r.get("phh3"):
                raise SourceFormatError(table, f"line {i}: needs 'he' and 'phh3' columns")
            he = root / r["he"]
            pid = r.get("pair_id") or he.stem
            pairs.append(PairSpec(pid, he, root / r["phh3"], r.get("tumour_type") or None,
                                  r.get("species") or None))
    else:
        for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            files = [p for p in sub.iterdir() if p.suffix.lower() in SLIDE_SUFFIXES]
            he_files = [p for p in files if _is(p.stem, "he")]
            ph_files = [p for p in files if _is(p.stem, "phh3")]
            if not he_files and not ph_files:
                continue
            if len(he_files) != 1 or len(ph_files) != 1:
                raise SourceFormatError(sub, f"expected one *he and one *phh3 slide, found "
                                             f"{len(he_files)} and {len(ph_files)}")
            pairs.append(PairSpec(sub.name, he_files[0], ph_files[0]))
    if not pairs:
        raise UsageError(f"no pairs in {root} (pairs.csv, or sub-folders with *he and *phh3 "
                         "slides)")
    ids = [p.pair_id for p in pairs]
    if len(set(ids)) != len(ids):
        raise UsageError(f"duplicate pair ids in {root}")
    return pairs


def _register_task(payload: dict[str, Any]) -> pa.Table:
    """Executor task: register one pair, return its one-row summary (errors recorded)."""
    import time

    spec: PairSpec = payload["pair"]
    opts: RegisterOptions = payload["options"]
    if spec.tumour_type or spec.species:
        opts = replace(opts, tumour_type=spec.tumour_type or opts.tumour_type,
                       species=spec.species or opts.species)
    t0 = time.perf_counter()
    try:
        r = register_pair(spec.he, spec.phh3, payload["out"], pair_id=spec.pair_id, options=opts)
        row = {"pair_id": spec.pair_id, "status": "ok", "message": "",
               "n_objects": r.n_objects, "n_flagged": r.n_flagged,
               "seconds": time.perf_counter() - t0,
               "channel": str(r.transform.quality.get("channel")),
               "counterstain": r.counterstain}
    except (MfcurateError, FileNotFoundError) as exc:
        row = {"pair_id": spec.pair_id, "status": "failed", "message": str(exc),
               "n_objects": 0, "n_flagged": 0, "seconds": time.perf_counter() - t0,
               "channel": None, "counterstain": None}
    return pa.table({k: [v] for k, v in row.items()}, schema=SUMMARY_SCHEMA)


def register_batch(
    pairs_dir: Path | str,
    out: Path | str,
    options: RegisterOptions | None = None,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    progress: Callable[..., Any] | None = None,
) -> list[dict[str, Any]]:
    """Register every pair of a pairs folder into ``out/<pair_id>/``; return one row per pair.

    Finished pairs are skipped on a rerun; failed ones are retried.
    """
    from mfcurate.executor import Task, run_tasks, task_output

    pairs = find_pairs(pairs_dir)
    out_p = Path(out)
    tasks_dir = out_p / ".tasks"
    o = options or RegisterOptions()
    tasks = [Task(p.pair_id, {"pair": p, "options": o, "out": str(out_p)}) for p in pairs]
    for t in tasks:  # retry failures
        f = task_output(tasks_dir, t.key)
        if f.exists():
            try:
                done = pq.read_table(f).to_pylist()
            except Exception:
                done = []
            if not done or done[0]["status"] != "ok" or not (out_p / t.key).exists():
                f.unlink()
    files = run_tasks(_register_task, tasks, tasks_dir, workers=workers, scheduler=scheduler,
                      progress=progress)
    rows: list[dict[str, Any]] = []
    for f in files:
        rows.extend(pq.read_table(f).to_pylist())
    return rows


def ingest_pairs(out: Path | str, dataset: Path | str) -> tuple[int, int]:
    """Ingest a register-phh3 output folder into a dataset (the ``phh3`` adapter)."""
    from mfcurate.pipelines.ingest import ingest_source

    rep = ingest_source("phh3", out, dataset)
    return rep.n_images, rep.n_objects


@step("register-phh3")
def register_phh3_step(ctx: StepContext, pairs: str | None = None, out: str | None = None,
                       synthetic_pairs: int = 1, size: int = 1536,
                       counterstain: str = "eosin", method: str = "deconv",
                       ingest: bool = True, sam_checkpoint: str | None = None,
                       sam_model: str = DEFAULT_SAM_MODEL, refine: str = "none",
                       device: str = "auto",
                       part_gap_um: float = DEFAULT_PART_GAP_UM) -> dict[str, Any]:
    """Register pHH3/H&E pairs and ingest the result as source ``phh3``.

    Without ``pairs``, ``synthetic_pairs`` synthetic pairs of ``size`` px are generated in the
    run's work folder (the demo).  ``sam_checkpoint`` and ``sam_model`` (as the demo passes
    them; default ViT-H) refine the transferred masks with SAM on ``device`` (``auto``: CUDA
    when available); ``refine`` may also ask for ``classical``.  ``part_gap_um``: DAB
    components closer than this are the masses of one multi-part figure (joined).
    """
    from mfcurate.synth.phh3_pair import make_pair, write_pair

    out_p = Path(out) if out else ctx.work_dir / "phh3"
    if pairs is None:
        pdir = ctx.work_dir / "phh3_pairs"
        for i in range(synthetic_pairs):
            folder = pdir / f"pair{i + 1}"
            if not (folder / "phh3.svs").exists():
                p = make_pair(ctx.seed + i, size=size, counterstain=counterstain,
                              n_mitoses=max(6, size * size // 100000))
                write_pair(folder, p)
        pairs_dir = pdir
    else:
        pairs_dir = Path(pairs)
    if sam_checkpoint:
        refine = "sam"
    from mfcurate.registration.dab import DabOptions
    from mfcurate.segment.figure_parts import PartGrouping

    opts = RegisterOptions(method=method, overlays=2, refine_masks=refine,
                           sam_checkpoint=sam_checkpoint, sam_model=sam_model, device=device,
                           dab=DabOptions(method=method,
                                          grouping=PartGrouping(max_gap_um=part_gap_um)))
    rows = register_batch(pairs_dir, out_p, opts,
                          workers=ctx.workers, scheduler=ctx.scheduler)
    ok = [r for r in rows if r["status"] == "ok"]
    for r in rows:
        if r["status"] != "ok":
            ctx.console.print(f"[yellow]register-phh3:[/yellow] {r['pair_id']}: {r['message']}")
    summary: dict[str, Any] = {"pairs": len(rows), "registered": len(ok),
                               "objects": sum(r["n_objects"] for r in ok), "out": str(out_p)}
    if ingest and ok:
        n_img, n_obj = ingest_pairs(out_p, ctx.dataset)
        summary.update({"ingested_images": n_img, "ingested_objects": n_obj})
    return summary
