"""Robustness of the registration on pairs with re-stain artefacts, for both generators.

Generators (default settings):

* ``warp`` — :mod:`mfcurate.testing.warp_pairs`, written independently of the method and
  never used to tune it: thin-plate warp, rotation ±40°, 1-2 tears, folds, bubbles,
  missing and extra tissue, focus blur, stain drift, counterstain eosin / hematoxylin /
  hematoxylin_light drawn per seed;
* ``synth`` — the project's own :mod:`mfcurate.synth.phh3_pair` (sinusoidal warp, a lost
  disc; eosin, every fifth pair hematoxylin).

Each pair (default 20 per generator, 4000 x 4000 px at 0.5 µm/px) is registered by
``estimate_transform`` at default settings and judged by the same quality gates as
``register-phh3`` (:mod:`mfcurate.registration.quality`).  Per pair: TRE median / p90 / max
on 400 landmarks (pHH3 -> H&E, µm), the share of landmarks the transform flags (failed
region, fallback or residual > 2 µm: what ``transfer_objects`` flags), the share that is
wrong (> 2 µm) *without* a flag, wall and CPU seconds.  A pair succeeds when it passes the
gates, its median TRE is <= 0.5 µm and at most 1 % of its landmarks are wrong without a
flag.  VALIS and wsireg run on the same files when they import (``--peers``); otherwise the
line says "not installed".

The 2 cores are shared: wall seconds vary run to run, CPU seconds less.

Run: ``PYTHONPATH=. python bench/bench_register_robust.py [--generator warp|synth|both]
[--pairs 20] [--size 4000] [--workdir DIR] [--peers]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import pickle
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def make(generator: str, seed: int, size: int, folder: Path) -> tuple[Path, Path, Any, str]:
    """Write (or reuse) one pair; return ``(he, phh3, truth, counterstain)``."""
    he, ph = folder / "he.svs", folder / "phh3.svs"
    if generator == "warp":
        from mfcurate.testing.warp_pairs import make_truth, write_pair

        truth = make_truth(seed, size)
        if not ph.exists():
            write_pair(folder, truth, workers=2)
        return he, ph, truth, truth.counterstain
    from mfcurate.synth.phh3_pair import make_pair
    from mfcurate.synth.phh3_pair import write_pair as write_synth

    cs = "hematoxylin" if seed % 5 == 4 else "eosin"
    cache = folder / "truth.pkl"
    if cache.exists() and ph.exists():
        return he, ph, pickle.loads(cache.read_bytes()), cs
    p = make_pair(seed, size=size, counterstain=cs)
    write_synth(folder, p)
    cache.write_bytes(pickle.dumps(p.truth))
    return he, ph, p.truth, cs


def register(he: Path, ph: Path) -> tuple[Any, list[tuple[str, float, str]], float, float, str]:
    """``(transform or None, failed gates, wall s, cpu s, error text)``."""
    from mfcurate.errors import MfcurateError
    from mfcurate.io.reader import open_image
    from mfcurate.registration import RegisterOptions
    from mfcurate.registration.pair import estimate_transform
    from mfcurate.registration.quality import check_quality

    a, b = open_image(he), open_image(ph)
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        _, _, _, tr = estimate_transform(a, b, he, ph, 0.5, 0.5, RegisterOptions())
        failed = check_quality(tr.quality)
        err = ""
    except MfcurateError as exc:
        tr, failed, err = None, [("error", float("nan"), "")], str(exc)
    finally:
        a.close()
        b.close()
    return tr, failed, time.perf_counter() - t0, time.process_time() - c0, err


def peers(he: Path, ph: Path, truth: Any) -> list[str]:
    """VALIS / wsireg on the same pair when importable; one line each."""
    out = []
    for name, fn in (("valis", _valis), ("wsireg", _wsireg)):
        if importlib.util.find_spec(name) is None:
            out.append(f"{name}: not installed")
            continue
        t0 = time.perf_counter()
        try:
            mapper = fn(he, ph)
            from mfcurate.testing.evaluate import landmark_score

            s = landmark_score(mapper, truth).summary()
            out.append(f"{name}: TRE median {s['tre_median_um']:.3f} p90 "
                       f"{s['tre_p90_um']:.3f} µm, {time.perf_counter() - t0:.0f} s")
        except Exception as exc:  # a peer tool failing is a result, not a crash
            out.append(f"{name}: failed ({type(exc).__name__}: {exc})")
    return out


class _Mapper:
    """Adapter: a ``pHH3 -> H&E`` point function with the transform's flag methods."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def phh3_to_he(self, pts: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(pts), np.float64)

    def residual_at(self, pts: np.ndarray) -> np.ndarray:
        return np.zeros(len(pts))

    def failed_at(self, pts: np.ndarray) -> np.ndarray:
        return np.zeros(len(pts), bool)

    fallback_at = failed_at


def _valis(he: Path, ph: Path) -> _Mapper:  # pragma: no cover - needs valis-wsi
    """VALIS 1.2 (untested here: not installable offline): rigid + non-rigid, eosin channel."""
    from valis import preprocessing, registration

    out = Path(tempfile.mkdtemp(prefix="valis_"))
    reg = registration.Valis(str(he.parent), str(out), reference_img_f=he.name,
                             align_to_reference=True, img_list=[str(he), str(ph)])
    reg.register(brightfield_processing_cls=preprocessing.HEDeconvolution,
                 brightfield_processing_kwargs={"stain": "eos"})
    src, dst = reg.get_slide(str(ph)), reg.get_slide(str(he))

    def fn(pts: np.ndarray) -> np.ndarray:
        return np.asarray(src.warp_xy_from_to(pts, dst))

    registration.kill_jvm()
    return _Mapper(fn)


def _wsireg(he: Path, ph: Path) -> _Mapper:  # pragma: no cover - needs wsireg
    """wsireg 0.3 (untested here: not installable offline): rigid + affine + nl (elastix)."""
    from wsireg.wsireg2d import WsiReg2D

    out = Path(tempfile.mkdtemp(prefix="wsireg_"))
    reg = WsiReg2D("pair", str(out))
    pre = {"image_type": "BF", "as_uint8": True}
    reg.add_modality("he", str(he), image_res=0.5, preprocessing=pre)
    reg.add_modality("phh3", str(ph), image_res=0.5, preprocessing=pre)
    reg.add_reg_path("phh3", "he", reg_params=["rigid", "affine", "nl"])
    reg.register_images()
    tform = reg.transformations["phh3"]  # RegTransformSeq

    def fn(pts: np.ndarray) -> np.ndarray:
        return np.asarray(tform.transform_points(pts, px_idx=True, source_res=0.5,
                                                 output_idx=True))

    return _Mapper(fn)


def run(generator: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    from mfcurate.registration.quality import describe_failures
    from mfcurate.testing.evaluate import landmark_score

    seeds = range(args.seed0, args.seed0 + args.pairs)
    rows, pooled = [], []
    print(f"\n== generator {generator}: {args.pairs} pairs of {args.size}² px", flush=True)
    for seed in seeds:
        folder = root / f"{generator}{args.size}_seed{seed}"
        t0 = time.perf_counter()
        he, ph, truth, cs = make(generator, seed, args.size, folder)
        gen = time.perf_counter() - t0
        tr, failed, wall, cpu, err = register(he, ph)
        if tr is None:
            print(f"seed {seed} {cs:17} refused: {err[:160]}", flush=True)
            rows.append({"ok": False, "refused": True, "wall": wall, "cpu": cpu})
            continue
        s = landmark_score(tr, truth).summary()
        pooled.append(landmark_score(tr, truth).errors_um)
        ok = not failed and s["tre_median_um"] <= 0.5 and s["wrong_unflagged_share"] <= 0.01
        rows.append({"ok": ok, "refused": bool(failed), "wall": wall, "cpu": cpu, **s})
        q = tr.quality
        gate = f" GATES FAILED: {describe_failures(failed)}" if failed else ""
        print(f"seed {seed} {cs:17} rot {q.get('rotation_deg', 0):+6.1f}° ch "
              f"{q.get('channel'):11} TRE med {s['tre_median_um']:.3f} p90 "
              f"{s['tre_p90_um']:.3f} max {s['tre_max_um']:.1f} µm (clean med "
              f"{s['clean_median_um']:.3f}) flagged {s['flagged_share']:.1%} wrong-unflagged "
              f"{s['wrong_unflagged_share']:.1%} (wrong-flagged {s['wrong_flagged']}) "
              f"regions failed {q.get('regions_failed')}/{q.get('refine_windows')} | "
              f"{wall:.1f} s wall {cpu:.1f} s CPU (generated in {gen:.0f} s)"
              f"{'' if ok else ' FAIL'}{gate}", flush=True)
        if args.peers:
            for line in peers(he, ph, truth):
                print(f"    {line}", flush=True)
        if not args.workdir:
            for f in folder.iterdir():
                f.unlink()
    e = np.concatenate(pooled) if pooled else np.array([np.nan])
    meds = [r["tre_median_um"] for r in rows if "tre_median_um" in r]
    summary = {
        "generator": generator, "pairs": len(rows), "success": sum(r["ok"] for r in rows),
        "refused": sum(r["refused"] for r in rows),
        "pooled_median_um": float(np.median(e)), "pooled_p90_um": float(np.percentile(e, 90)),
        "median_of_medians_um": float(np.median(meds)) if meds else float("nan"),
        "worst_median_um": float(max(meds)) if meds else float("nan"),
        "wall_median_s": float(np.median([r["wall"] for r in rows])),
        "cpu_median_s": float(np.median([r["cpu"] for r in rows])),
    }
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generator", choices=("warp", "synth", "both"), default="both")
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--size", type=int, default=4000)
    ap.add_argument("--seed0", type=int, default=100)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--peers", action="store_true", help="also run VALIS / wsireg")
    args = ap.parse_args()
    import cv2

    cv2.setNumThreads(2)
    for name in ("valis", "wsireg"):
        print(f"{name}: {'installed' if importlib.util.find_spec(name) else 'not installed'}")
    gens = ["warp", "synth"] if args.generator == "both" else [args.generator]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        for g in gens:
            out.append(run(g, args, root))
    print("\ngenerator  pairs success refused  pooled_med  pooled_p90  med_of_meds  worst_med  "
          "wall_s(med)  cpu_s(med)")
    for s in out:
        print(f"{s['generator']:9} {s['pairs']:6} {s['success']:7} {s['refused']:7} "
              f"{s['pooled_median_um']:11.3f} {s['pooled_p90_um']:11.3f} "
              f"{s['median_of_medians_um']:12.3f} {s['worst_median_um']:10.3f} "
              f"{s['wall_median_s']:12.1f} {s['cpu_median_s']:11.1f}")


if __name__ == "__main__":
    main()
