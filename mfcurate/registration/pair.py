"""Register one H&E / pHH3 pair end to end and write its output folder atomically."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mfcurate.dataset import atomic_folder
from mfcurate.errors import RegistrationError
from mfcurate.registration.channels import estimate_dab_vector, guess_counterstain
from mfcurate.registration.dab import DabOptions, detect_dab
from mfcurate.registration.outputs import (
    PAIR_FILE,
    TRANSFORM_FILE,
    objects_to_table,
    write_geojson,
    write_objects,
    write_overlays,
)
from mfcurate.registration.quality import (
    QualityGates,
    RegistrationQualityError,
    check_quality,
    describe_failures,
)
from mfcurate.registration.refine import RefineOptions, pick_channel, refine
from mfcurate.registration.rigid import (
    LowRes,
    MirroredSlideError,
    affine_to_level0,
    fit_similarity,
    read_lowres,
)
from mfcurate.registration.transfer import refine_with_segmenter, transfer_objects
from mfcurate.registration.transform import PairTransform
from mfcurate.segment.spec import DEFAULT_SAM_MODEL
from mfcurate.stain import HED_STAINS

MIN_TISSUE_FRACTION = 0.002
#: longest side (px) of the low-resolution images of the slide-level fit
GLOBAL_MAX_SIDE = 2048


@dataclass
class RegisterOptions:
    """Everything ``register-phh3`` can be told (units in the names).

    Attributes:
        method: DAB rule, ``deconv`` or ``rgb``.
        channel: shared channel, ``auto``, ``eosin``, ``hematoxylin`` or ``gray``.
        allow_mirror: accept a pHH3 slide scanned mirrored.
        global_mpp: µm/px of the slide-level fit; None picks 2-4 µm/px so that the larger
            slide is about 1024 px long there, and coarser for slides that would be longer
            than ``GLOBAL_MAX_SIDE`` (2048) px.
        refine: patch-level refinement options.
        dab: DAB detection options.
        estimate_stains: estimate the DAB vector per slide.
        refine_masks: ``none``, ``classical`` or ``sam`` (re-segment masks on the H&E).
        sam_checkpoint: SAM checkpoint path for ``sam``.
        sam_model: SAM model type (default ``vit_h``, the paper's; ``vit_l``, ``vit_b``,
            ``tiny``).
        device: torch device of the SAM refinement (``auto``: CUDA when available).
        max_residual_um: flag objects whose local residual exceeds this.
        overlays: PNG patches to write.
        tissue_fallback: when keypoints do not match, align tissue outlines instead
            (serial sections, very low resolution); gated by IoU and channel NCC.
        tumour_type: written to ``pair.json`` for the adapter.
        species: idem.
        default_mpp: µm/px when a slide does not say.
        gates: quality gates the transform must pass (:mod:`.quality`).
        force: keep a transform that fails its gates (objects flagged
            ``registration_failed_region``, the failures listed in ``quality``).
    """

    method: str = "deconv"
    channel: str = "auto"
    allow_mirror: bool = True
    global_mpp: float | None = None
    refine: RefineOptions = field(default_factory=RefineOptions)
    dab: DabOptions = field(default_factory=DabOptions)
    estimate_stains: bool = True
    refine_masks: str = "none"
    sam_checkpoint: str | None = None
    sam_model: str = DEFAULT_SAM_MODEL
    device: str = "auto"
    max_residual_um: float = 2.0
    overlays: int = 3
    tissue_fallback: bool = True
    tumour_type: str | None = None
    species: str | None = None
    default_mpp: float | None = None
    gates: QualityGates = field(default_factory=QualityGates)
    force: bool = False


@dataclass
class PairResult:
    """What one registration produced."""

    pair_id: str
    folder: Path
    n_objects: int
    n_flagged: int
    transform: PairTransform
    timings: dict[str, float]
    counterstain: str


def default_pair_id(he_path: Path) -> str:
    """Pair id from the H&E file name (``case7_he.svs`` -> ``case7``, ``he.svs`` -> ``he``)."""
    name = he_path.name
    stem = he_path.stem
    for suf in (".ome.tiff", ".ome.tif"):
        if name.lower().endswith(suf):
            stem = name[: -len(suf)]
    for tag in ("_he", "-he", "_h&e", "-h&e"):
        if stem.lower().endswith(tag) and len(stem) > len(tag):
            return stem[: -len(tag)]
    return stem


def _mpp(img: Any, path: Path, default: float | None) -> float:
    mpp = img.mpp_x or default
    if not mpp:
        raise RegistrationError(f"{path}: the file gives no µm/px; pass --mpp")
    return float(mpp)


def register_pair(
    he_path: Path | str,
    phh3_path: Path | str,
    out_root: Path | str,
    *,
    pair_id: str | None = None,
    options: RegisterOptions | None = None,
    progress: Callable[[str], None] | None = None,
) -> PairResult:
    """Register a pHH3 re-stain to its H&E slide and transfer the DAB-positive nuclei.

    Writes ``out_root/<pair_id>/`` (see :mod:`mfcurate.registration.outputs`) through a
    temporary folder renamed at the end, so a failure leaves no partial output and an
    existing result is replaced only by a complete one.

    Raises:
        FileNotFoundError: a slide does not exist.
        SourceFormatError: a slide is unreadable.
        RegistrationError: no tissue, no overlap, mirrored glass (with ``allow_mirror``
            off), or no µm/px.
        RegistrationQualityError: the transform fails a quality gate (naming it) and
            ``force`` is off.
        UsageError: both paths are the same file.
    """
    from mfcurate.io.reader import open_image

    o = options or RegisterOptions()
    he_p, ph_p = Path(he_path), Path(phh3_path)
    _refuse_same_file(he_p, ph_p)
    pid = pair_id or default_pair_id(he_p)
    say = progress or (lambda _s: None)
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    he_img = open_image(he_p)
    ph_img = open_image(ph_p)
    try:
        he_mpp = _mpp(he_img, he_p, o.default_mpp)
        ph_mpp = _mpp(ph_img, ph_p, o.default_mpp)
        he_low, ph_low, glob, tr = estimate_transform(he_img, ph_img, he_p, ph_p, he_mpp,
                                                      ph_mpp, o, say, t)
        failed = _gate_quality(tr, o, he_p, ph_p)
        say("DAB detection")
        objs, counter = _detect_dab_objects(ph_img, ph_low, ph_mpp, tr, o)
        t["detect_s"] = time.perf_counter() - t0 - sum(t.values())
        say("transfer")
        moved = _transfer_to_he(objs, tr, he_img, he_mpp, o, bool(failed))
        t["transfer_s"] = time.perf_counter() - t0 - sum(t.values())
        table = objects_to_table(moved, (he_mpp, float(he_img.mpp_y or he_mpp)))
        final, n_flagged = _write_pair_folder(
            Path(out_root), pid, he_p, ph_p, he_img, ph_img, he_low, he_mpp, ph_mpp, tr, glob,
            moved, table, counter, o, t, t0)
        return PairResult(pid, final, table.num_rows, n_flagged, tr, t, counter)
    finally:
        he_img.close()
        ph_img.close()


def _gate_quality(tr: PairTransform, o: RegisterOptions, he_p: Path,
                  ph_p: Path) -> list[tuple[str, float, str]]:
    """Check ``tr`` against ``o.gates``; record failures in ``tr.quality``.

    Returns the failed checks (empty when all pass).

    Raises:
        RegistrationQualityError: a check failed and ``o.force`` is off.
    """
    failed = check_quality(tr.quality, o.gates)
    if failed:
        tr.quality["failed_checks"] = [name for name, _v, _l in failed]
        if not o.force:
            raise RegistrationQualityError(
                f"{he_p} / {ph_p}: the registration failed its quality checks: "
                f"{describe_failures(failed)}; the slides may not show the same section "
                "(rerun with --force to keep it anyway)", failed)
    return failed


def _detect_dab_objects(ph_img: Any, ph_low: LowRes, ph_mpp: float, tr: PairTransform,
                        o: RegisterOptions) -> tuple[list[Any], str]:
    """Detect DAB-positive nuclei on the pHH3 slide (level-0 pHH3 pixels).

    Records the counterstain and the DAB vector in ``tr.quality``.

    Returns:
        (objects, counterstain name).
    """
    counter = guess_counterstain(ph_low.rgb, ph_low.mask)
    stains = HED_STAINS
    if o.method == "deconv" and o.estimate_stains:
        stains = estimate_dab_vector(ph_low.rgb, ph_low.mask)
    tr.quality["counterstain"] = counter
    tr.quality["dab_vector"] = [round(float(v), 4) for v in stains[2]]
    dab_opts = o.dab
    if dab_opts.method != o.method:
        dab_opts = DabOptions(**{**dab_opts.__dict__, "method": o.method})
    objs = detect_dab(ph_img, ph_mpp, ph_low.mask, ph_low.scale, dab_opts, stains)
    return objs, counter


def _transfer_to_he(objs: list[Any], tr: PairTransform, he_img: Any, he_mpp: float,
                    o: RegisterOptions, failed: bool) -> list[Any]:
    """Map pHH3 objects onto the H&E slide (level-0 H&E pixels), optionally re-segmented.

    When ``failed`` (a gate failed but ``force`` kept it) every object is flagged
    ``registration_failed_region``.
    """
    moved = transfer_objects(objs, tr, (he_img.width, he_img.height),
                             max_residual_um=o.max_residual_um)
    if failed:  # forced through: every object is suspect
        for m in moved:
            if "registration_failed_region" not in m.qa_flags:
                m.qa_flags.append("registration_failed_region")
    if o.refine_masks != "none":
        moved = refine_with_segmenter(moved, he_img, he_mpp, o.refine_masks,
                                      o.sam_checkpoint, device=o.device,
                                      model_type=o.sam_model)
    return moved


def _write_pair_folder(out_root_p: Path, pid: str, he_p: Path, ph_p: Path, he_img: Any,
                       ph_img: Any, he_low: LowRes, he_mpp: float, ph_mpp: float,
                       tr: PairTransform, glob: PairTransform, moved: list[Any], table: Any,
                       counter: str, o: RegisterOptions, t: dict[str, float],
                       t0: float) -> tuple[Path, int]:
    """Write ``out_root_p/<pid>/`` whole: built beside it and swapped in at the end.

    Through :func:`mfcurate.dataset.atomic_folder`, so a killed run leaves the previous
    folder (or none) and its leftovers are cleaned by the next run.

    Fills ``t["write_s"]`` and ``t["total_s"]`` (seconds since ``t0``).

    Returns:
        (final folder, number of flagged objects).
    """
    final = out_root_p / pid
    with atomic_folder(final) as tmp:
        tr.save(tmp / TRANSFORM_FILE)
        write_objects(tmp, table)
        write_geojson(tmp, table, pid)
        if o.overlays > 0:
            centres = [m.centroid_xy for m in moved] or _tissue_points(he_low, o.overlays)
            write_overlays(tmp, he_img, ph_img, tr, glob, centres, max_patches=o.overlays,
                           objects=table)
        t["write_s"] = time.perf_counter() - t0 - sum(t.values())
        t["total_s"] = time.perf_counter() - t0
        n_flagged = sum(1 for m in moved if m.qa_flags)
        pair = {
            "pair_id": pid, "he_slide": str(he_p.resolve()), "phh3_slide": str(ph_p.resolve()),
            "he_mpp": [he_mpp, float(he_img.mpp_y or he_mpp)], "phh3_mpp": ph_mpp,
            "he_width": he_img.width, "he_height": he_img.height,
            "tumour_type": o.tumour_type, "species": o.species, "counterstain": counter,
            "method": o.method, "channel": tr.quality["channel"],
            "refine_masks": o.refine_masks,
            "n_objects": table.num_rows,
            "n_flagged": n_flagged,
            "quality": tr.quality, "timings_s": {k: round(v, 3) for k, v in t.items()},
        }
        import json

        (tmp / PAIR_FILE).write_text(json.dumps(pair, indent=2) + "\n")
    return final, n_flagged


def estimate_transform(he_img: Any, ph_img: Any, he_p: Path, ph_p: Path, he_mpp: float,
                       ph_mpp: float, o: RegisterOptions,
                       say: Callable[[str], None] | None = None,
                       timings: dict[str, float] | None = None
                       ) -> tuple[LowRes, LowRes, PairTransform, PairTransform]:
    """Slide-level fit and patch-level refinement of one pair.

    Returns:
        ``(he_low, phh3_low, global_only, refined)``.

    Raises:
        RegistrationError: no tissue, no consistent match, no overlap, or mirrored glass
            with ``allow_mirror`` off.
    """
    say = say or (lambda _s: None)
    t = timings if timings is not None else {}
    t0 = time.perf_counter()
    say("reading thumbnails")
    g_mpp = o.global_mpp
    if g_mpp is None:
        extent = max(he_img.width * he_mpp, he_img.height * he_mpp,
                     ph_img.width * ph_mpp, ph_img.height * ph_mpp)
        # about 1024 px long at 2-4 µm/px, never more than GLOBAL_MAX_SIDE px (a whole
        # 20 mm section is fitted at ~10 µm/px; the refinement absorbs the rest)
        g_mpp = max(float(np.clip(extent / 1024.0, 2.0, 4.0)), extent / GLOBAL_MAX_SIDE)
    he_low = read_lowres(he_img, he_mpp, g_mpp)
    ph_low = read_lowres(ph_img, ph_mpp, g_mpp)
    for low, p, what in ((he_low, he_p, "H&E"), (ph_low, ph_p, "pHH3")):
        if low.mask.mean() < MIN_TISSUE_FRACTION:
            raise RegistrationError(f"{p}: the {what} slide shows no tissue (empty slide?)")
    t["read_s"] = time.perf_counter() - t0
    say("slide-level fit")
    try:
        fit = fit_similarity(he_low, ph_low, channel=o.channel, allow_mirror=o.allow_mirror)
        method = "features"
    except RegistrationError as exc:
        if isinstance(exc, MirroredSlideError):
            raise
        if not o.tissue_fallback:
            raise RegistrationQualityError(
                f"{he_p} / {ph_p}: the registration failed its quality check inliers: {exc}",
                [("inliers", 0.0, ">= 30")]) from exc
        from mfcurate.registration.rigid import fit_by_tissue

        try:
            fit = fit_by_tissue(he_low, ph_low, allow_mirror=o.allow_mirror)
        except RegistrationError as exc2:
            raise RegistrationQualityError(
                f"{he_p} / {ph_p}: the registration failed its quality check inliers: {exc}; "
                f"tissue-outline fallback: {exc2}", [("inliers", 0.0, ">= 30")]) from exc2
        method = "tissue_outline"
    A = affine_to_level0(fit.affine_low, he_low.scale, ph_low.scale)
    quality: dict[str, Any] = {
        "global_method": method, "channel": fit.channel, "channel_inliers": fit.inliers,
        "global_inliers": fit.inliers.get(fit.channel + ("/mirrored" if fit.mirrored
                                                         else ""), 0),
        "global_matches": fit.matches, "rotation_deg": fit.rotation_deg,
        "scale": fit.scale, "mirrored": fit.mirrored, "global_mpp": g_mpp,
    }
    glob = PairTransform(A, he_mpp=he_mpp, phh3_mpp=ph_mpp, quality=dict(quality))
    _check_overlap(glob, he_low, ph_low, he_p, ph_p, o)
    t["global_s"] = time.perf_counter() - t0 - t["read_s"]
    say("patch-level refinement")
    ref_channel = fit.channel
    done: dict[tuple[float, float], Any] = {}
    if o.channel == "auto" and fit.channel in ("eosin", "hematoxylin"):
        others = [c for c in ("eosin", "hematoxylin") if c != fit.channel]
        ref_channel, probe, done = pick_channel(he_img, ph_img, glob, he_low.mask,
                                                he_low.scale, [fit.channel, *others],
                                                o.refine)
        glob.quality["refine_channel_probe"] = {k: round(v, 4) for k, v in probe.items()}
    tr = refine(he_img, ph_img, glob, he_low.mask, he_low.scale, ref_channel, o.refine,
                precomputed=done)
    t["refine_s"] = time.perf_counter() - t0 - t["read_s"] - t["global_s"]
    return he_low, ph_low, glob, tr


def _tissue_points(low: Any, n: int) -> list[tuple[float, float]]:
    ys, xs = np.nonzero(low.mask)
    if len(xs) == 0:
        return []
    idx = np.linspace(0, len(xs) - 1, n + 2).astype(int)[1:-1]
    return [(float(xs[i] * low.scale), float(ys[i] * low.scale)) for i in idx]


def _refuse_same_file(he_p: Path, ph_p: Path) -> None:
    """A slide registered to itself is a usage error (identity transform, no pHH3)."""
    from mfcurate.errors import UsageError

    try:
        same = he_p.samefile(ph_p)
    except OSError:
        same = he_p.resolve() == ph_p.resolve()
    if same:
        raise UsageError(f"{he_p} is given as both the H&E and the pHH3 slide; give the "
                         "pHH3 re-stain of the same section as the second slide")


def _check_overlap(tr: PairTransform, he_low: Any, ph_low: Any, he_p: Path, ph_p: Path,
                   o: RegisterOptions) -> None:
    """The H&E tissue mapped onto the pHH3 must mostly land on pHH3 tissue.

    Fails early (before the costly refinement) unless ``o.force``.
    """
    ys, xs = np.nonzero(he_low.mask)
    step = max(1, len(xs) // 5000)
    pts = np.stack([(xs[::step] + 0.5) * he_low.scale, (ys[::step] + 0.5) * he_low.scale], 1)
    q = tr.he_to_phh3(pts) / ph_low.scale
    c, r = q[:, 0].astype(int), q[:, 1].astype(int)
    inside = (c >= 0) & (c < ph_low.mask.shape[1]) & (r >= 0) & (r < ph_low.mask.shape[0])
    hit = np.zeros(len(pts), bool)
    hit[inside] = ph_low.mask[r[inside], c[inside]]
    frac = float(hit.mean()) if len(hit) else 0.0
    tr.quality["tissue_overlap"] = frac
    if frac < o.gates.min_tissue_overlap and not o.force:
        raise RegistrationQualityError(
            f"{he_p} and {ph_p} do not overlap: the registration failed its quality check "
            f"tissue_overlap {frac:.3g} (needs >= {o.gates.min_tissue_overlap}): only "
            f"{frac:.0%} of the H&E tissue maps onto pHH3 tissue (rerun with --force to keep "
            "it anyway)", [("tissue_overlap", frac, f">= {o.gates.min_tissue_overlap}")])
