"""``mfcurate build-patches DATASET``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mfcurate.cli._common import (
    DatasetArg,
    SchedulerOpt,
    WorkersOpt,
    console,
    mpp_value,
    progress_callback,
    reports_errors,
)
from mfcurate.cli._select import (
    HoldoutOpt,
    ImagesOpt,
    LabelOpt,
    SourceOpt,
    SpeciesOpt,
    TumourOpt,
    selection_options,
)


def register(app: typer.Typer) -> None:
    """Attach the command to the app."""
    app.command(
        "build-patches",
        help="Cut one RGB crop and one nucleus mask per object, resampled to one µm/px, into "
             "a memory-mapped patch store for training.\n\n"
             "Example: [bold]mfcurate build-patches ds --size 64 --mpp 0.25[/bold]\n\n"
             "Images of the held-out SOURCE:SPLIT pairs (default midog++:test) and their "
             "copies in other sources are left out, as are duplicate images; --source, "
             "--species, --tumour, --label and --images narrow the store further.\n\n"
             "Rejected objects are skipped, and so are objects without a real mask (run "
             "refine-masks first; --include-disk cuts them with a disk mask) and negatives "
             "centred inside a mitotic figure's box; all are counted per label.  Per-image "
             "work is resumable: rerun the same command after an interruption.",
    )(build_patches)


@reports_errors
def build_patches(
    dataset: DatasetArg,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Store folder (default DATASET/patches).")] = None,
    size: Annotated[int, typer.Option("--size", min=8, help="Crop side in target pixels.")] = 64,
    mpp: Annotated[float, typer.Option("--mpp", min=0.01, help="Target µm per pixel.")] = 0.25,
    disk_radius_um: Annotated[float, typer.Option(
        help="Radius in µm of the disk mask of objects without a mask.")] = 4.0,
    include_disk: Annotated[bool, typer.Option(
        help="Also cut objects without a real mask, with a disk mask (a cue the classifier "
             "can learn: off by default).")] = False,
    holdout: HoldoutOpt = None,
    source: SourceOpt = None,
    species: SpeciesOpt = None,
    tumour: TumourOpt = None,
    label: LabelOpt = None,
    images: ImagesOpt = None,
    default_mpp: Annotated[float | None, typer.Option(
        callback=mpp_value,
        help="µm/px of images that have none (otherwise they are an error).")] = None,
    workers: WorkersOpt = 1,
    scheduler: SchedulerOpt = None,
) -> None:
    """Build the patch store."""
    from mfcurate.classifier.patches import PatchConfig, build_patch_store
    from mfcurate.classifier.pool import pool_selection
    from mfcurate.dataset import Dataset, select_images

    ds = Dataset.open(dataset)
    sel, notes = pool_selection(ds, selection_options(
        source=source, species=species, tumour=tumour, label=label, images=images),
        list(holdout) if holdout else None)
    for note in notes:
        console.print(f"note: {note}", markup=False)
    n_images = select_images(ds, sel, columns=["image_key"]).num_rows
    cfg = PatchConfig(size_px=size, mpp=mpp, disk_radius_um=disk_radius_um)
    with progress_callback("patches", total=n_images, unit="patches") as advance:
        rep = build_patch_store(dataset, out, cfg, selection=sel, default_mpp=default_mpp,
                                workers=workers, scheduler=scheduler, progress=advance,
                                include_disk=include_disk)
    held = ", ".join(f"{a}:{b}" for a, b in sel.holdout) or "nothing"
    console.print(f"[green]patch store[/green] {rep.out}: {rep.summary()}; held out {held}")
