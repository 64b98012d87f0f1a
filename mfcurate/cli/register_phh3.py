"""``mfcurate register-phh3 HE_SLIDE PHH3_SLIDE [--out DIR] [--dataset DATASET]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mfcurate.cli._common import SchedulerOpt, WorkersOpt, console, err_console, reports_errors
from mfcurate.segment.figure_parts import DEFAULT_PART_GAP_UM
from mfcurate.segment.spec import DEFAULT_SAM_MODEL

if TYPE_CHECKING:
    from mfcurate.registration.pair import PairResult, RegisterOptions


def register(app: typer.Typer) -> None:
    """Attach the command to the app."""
    app.command(
        "register-phh3",
        help="Register a pHH3 re-stain to its H&E slide and turn DAB-positive nuclei into "
             "mitotic-figure masks on the H&E.\n\n"
             "Example: [bold]mfcurate register-phh3 case7_he.svs case7_phh3.svs --out phh3 "
             "--dataset ds[/bold]\n\n"
             "Batch: [bold]mfcurate register-phh3 --pairs PAIRS_DIR --out phh3 -j 2[/bold] "
             "(PAIRS_DIR holds pairs.csv with he,phh3 columns, or one sub-folder per pair with "
             "*he and *phh3 slides; reruns resume).\n\n"
             "Writes OUT/<pair_id>/: transform.json, objects.parquet/.csv, objects.geojson "
             "(QuPath), pair.json and overlays/*.png; --dataset also ingests OUT as source "
             "'phh3'.",
    )(register_phh3)


@reports_errors
def register_phh3(
    he_slide: Annotated[Path | None, typer.Argument(help="H&E slide.", show_default=False)] = None,
    phh3_slide: Annotated[Path | None, typer.Argument(help="pHH3 re-stain of the same section.",
                                                      show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (one sub-folder per "
                                                          "pair).")] = Path("phh3-registered"),
    dataset: Annotated[Path | None, typer.Option(help="Also ingest the results into this "
                                                      "dataset (source 'phh3').")] = None,
    pairs: Annotated[Path | None, typer.Option(help="Batch form: a folder of pairs.")] = None,
    pair_id: Annotated[str | None, typer.Option(help="Pair id (default: H&E file stem).")] = None,
    method: Annotated[str, typer.Option(help="DAB rule: deconv (colour deconvolution) or rgb "
                                             "(G<=150 and B<=150, eosin counterstain only).")
                      ] = "deconv",
    channel: Annotated[str, typer.Option(help="Shared channel: auto, eosin, hematoxylin, "
                                              "gray.")] = "auto",
    refine: Annotated[str, typer.Option(help="Refine masks on the H&E: none, classical, sam.")
                      ] = "none",
    sam_checkpoint: Annotated[Path | None, typer.Option(help="SAM checkpoint for --refine sam."
                                                        )] = None,
    sam_model: Annotated[str, typer.Option(help="SAM model type: vit_h (the paper's), vit_l, "
                                                 "vit_b, tiny.")] = DEFAULT_SAM_MODEL,
    device: Annotated[str, typer.Option(
        help="Torch device for SAM; auto: CUDA when available.")] = "auto",
    allow_mirror: Annotated[bool, typer.Option(help="Accept a pHH3 slide scanned mirrored.")
                            ] = True,
    refine_mpp: Annotated[float, typer.Option(help="µm/px of the optical-flow refinement "
                                                   "(1 is a little more accurate, 3-4x slower).")
                          ] = 2.0,
    dab_threshold: Annotated[float, typer.Option(help="DAB OD threshold (deconv).")] = 0.25,
    min_area_um2: Annotated[float, typer.Option(help="Smallest object, µm².")] = 8.0,
    max_area_um2: Annotated[float, typer.Option(help="Largest object, µm².")] = 250.0,
    part_gap_um: Annotated[float, typer.Option(
        help="DAB components closer than this (µm, mask to mask) are the masses of one "
             "multi-part figure (anaphase/telophase), joined and flagged multi_component; "
             "0 joins only touching masks.")] = DEFAULT_PART_GAP_UM,
    max_residual_um: Annotated[float, typer.Option(help="Flag objects whose local registration "
                                                        "residual exceeds this (µm).")] = 2.0,
    mpp: Annotated[float | None, typer.Option(help="µm/px for slides whose file gives none.")
                   ] = None,
    tumour_type: Annotated[str | None, typer.Option(help="Tumour type written to pair.json.")
                           ] = None,
    species: Annotated[str | None, typer.Option(help="Species written to pair.json.")] = None,
    overlays: Annotated[int, typer.Option(help="PNG overlay patches per pair.")] = 3,
    force: Annotated[bool, typer.Option(
        "--force", help="Keep a registration that fails its quality checks (inliers, "
                        "tissue overlap, NCC after, windows ok, residual); its objects are "
                        "flagged registration_failed_region.")] = False,
    workers: WorkersOpt = 1,
    scheduler: SchedulerOpt = None,
) -> None:
    """Register pHH3 re-stains to H&E slides."""
    _check_values(method, channel, refine, sam_checkpoint, refine_mpp, pairs, he_slide,
                  phh3_slide)
    if part_gap_um < 0:
        from mfcurate.errors import UsageError

        raise UsageError("--part-gap-um must be >= 0")
    opts = _options(
        method=method, channel=channel, allow_mirror=allow_mirror, refine=refine,
        sam_checkpoint=sam_checkpoint, sam_model=sam_model, device=device,
        part_gap_um=part_gap_um, refine_mpp=refine_mpp,
        dab_threshold=dab_threshold, min_area_um2=min_area_um2, max_area_um2=max_area_um2,
        max_residual_um=max_residual_um, overlays=overlays, tumour_type=tumour_type,
        species=species, mpp=mpp, force=force)
    if pairs is None:
        assert he_slide is not None and phh3_slide is not None  # noqa: S101 - checked above
        _register_one(he_slide, phh3_slide, out, pair_id, opts)
    else:
        _register_many(pairs, out, opts, workers, scheduler)
    if dataset is not None:
        from mfcurate.pipelines.phh3 import ingest_pairs

        n_img, n_obj = ingest_pairs(out, dataset)
        console.print(f"[green]ingested[/green] phh3: {n_img} images, {n_obj} objects -> "
                      f"{dataset}")


def _check_values(method: str, channel: str, refine: str, sam_checkpoint: Path | None,
                  refine_mpp: float, pairs: Path | None, he_slide: Path | None,
                  phh3_slide: Path | None) -> None:
    """Refuse option values and argument combinations the command cannot run.

    Raises:
        UsageError: naming the offending option (exit 2).
    """
    from mfcurate.errors import UsageError

    if method not in ("deconv", "rgb"):
        raise UsageError(f"--method must be deconv or rgb, not {method!r}")
    if channel not in ("auto", "eosin", "hematoxylin", "gray"):
        raise UsageError(f"--channel must be auto, eosin, hematoxylin or gray, not {channel!r}")
    if refine not in ("none", "classical", "sam"):
        raise UsageError(f"--refine must be none, classical or sam, not {refine!r}")
    if refine == "sam" and sam_checkpoint is None:
        raise UsageError("--refine sam needs --sam-checkpoint")
    if refine_mpp <= 0:
        raise UsageError("--refine-mpp must be positive")
    if pairs is None and (he_slide is None or phh3_slide is None):
        raise UsageError("give HE_SLIDE and PHH3_SLIDE, or --pairs PAIRS_DIR")
    if pairs is not None and (he_slide is not None or phh3_slide is not None):
        raise UsageError("give either HE_SLIDE PHH3_SLIDE or --pairs, not both")


def _options(*, method: str, channel: str, allow_mirror: bool, refine: str,
             sam_checkpoint: Path | None, sam_model: str, device: str, part_gap_um: float,
             refine_mpp: float, dab_threshold: float, min_area_um2: float, max_area_um2: float,
             max_residual_um: float, overlays: int, tumour_type: str | None,
             species: str | None, mpp: float | None, force: bool) -> RegisterOptions:
    """Build the library's :class:`RegisterOptions` from the command-line values."""
    from mfcurate.registration.dab import DabOptions
    from mfcurate.registration.pair import RegisterOptions
    from mfcurate.registration.refine import RefineOptions
    from mfcurate.segment.figure_parts import PartGrouping

    return RegisterOptions(
        method=method, channel=channel, allow_mirror=allow_mirror, refine_masks=refine,
        sam_checkpoint=str(sam_checkpoint) if sam_checkpoint else None, sam_model=sam_model,
        device=device,
        dab=DabOptions(method=method, dab_threshold=dab_threshold, min_area_um2=min_area_um2,
                       max_area_um2=max_area_um2,
                       grouping=PartGrouping(max_gap_um=part_gap_um)),
        refine=RefineOptions(ref_mpp=refine_mpp),
        max_residual_um=max_residual_um, overlays=overlays, tumour_type=tumour_type,
        species=species, default_mpp=mpp, force=force)


def _register_one(he_slide: Path, phh3_slide: Path, out: Path, pair_id: str | None,
                  opts: RegisterOptions) -> None:
    """Register one pair with a progress bar and print its one-line summary."""
    from mfcurate.cli._common import progress_callback
    from mfcurate.registration.pair import register_pair

    with progress_callback("register-phh3", total=5, unit="steps") as advance:
        res = register_pair(he_slide, phh3_slide, out, pair_id=pair_id, options=opts,
                            progress=lambda _s: advance())
    _print_pair(res)


def _print_pair(res: PairResult) -> None:
    """Print one pair's summary (and a warning when it was kept with ``--force``)."""
    q = res.transform.quality
    console.print(
        f"registered {res.pair_id}: channel {q.get('channel')} "
        f"({q.get('global_inliers')} inliers, rotation {q.get('rotation_deg', 0):.1f}°"
        f"{', mirrored' if q.get('mirrored') else ''}), "
        f"residual {q.get('residual_median_um') or float('nan'):.2f} µm; "
        f"{res.n_objects} objects ({res.n_flagged} flagged) in "
        f"{res.timings['total_s']:.1f} s -> {res.folder}", markup=False, highlight=False)
    if q.get("failed_checks"):
        err_console.print(f"warning: kept with --force although it failed: "
                          f"{', '.join(q['failed_checks'])}", markup=False,
                          highlight=False)


def _register_many(pairs: Path, out: Path, opts: RegisterOptions, workers: int,
                   scheduler: str | None) -> None:
    """Register every pair of the ``pairs`` folder and print the batch summary.

    Raises:
        RegistrationError: not one pair could be registered.
    """
    from mfcurate.cli._common import progress_callback
    from mfcurate.pipelines.phh3 import find_pairs, register_batch

    n = len(find_pairs(pairs))
    with progress_callback("register-phh3", total=n, unit="objects") as advance:
        rows = register_batch(pairs, out, opts, workers=workers, scheduler=scheduler,
                              progress=advance)
    _print_batch(rows, out)
    if not any(r["status"] == "ok" for r in rows):
        from mfcurate.errors import RegistrationError

        raise RegistrationError(f"no pair of {pairs} could be registered")


def _print_batch(rows: list[dict[str, Any]], out: Path) -> None:
    """Print the batch summary line, then one line per failed pair (to stderr)."""
    ok = [r for r in rows if r["status"] == "ok"]
    console.print(f"registered {len(ok)}/{len(rows)} pairs, "
                  f"{sum(r['n_objects'] for r in ok)} objects -> {out}", markup=False,
                  highlight=False)
    for r in rows:
        if r["status"] != "ok":
            err_console.print(f"failed {r['pair_id']}: {r['message']}", markup=False,
                              highlight=False)
