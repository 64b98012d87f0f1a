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
    progress_callback,
    reports_errors,
)


def register(app: typer.Typer) -> None:
    """Attach the command to the app."""
    app.command(
        "build-patches",
        help="Cut one RGB crop and one nucleus mask per object, resampled to one µm/px, into "
             "a memory-mapped patch store for training.\n\n"
             "Example: [bold]mfcurate build-patches ds --size 64 --mpp 0.25[/bold]\n\n"
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
    source: Annotated[list[str] | None, typer.Option(
        "--source", help="Only this source (repeatable).")] = None,
    default_mpp: Annotated[float | None, typer.Option(
        help="µm/px of images that have none (otherwise they are an error).")] = None,
    workers: WorkersOpt = 1,
    scheduler: SchedulerOpt = None,
) -> None:
    """Build the patch store."""
    from mfcurate.classifier.patches import PatchConfig, build_patch_store
    from mfcurate.dataset import Dataset

    n_images = Dataset.open(dataset).images().num_rows
    cfg = PatchConfig(size_px=size, mpp=mpp, disk_radius_um=disk_radius_um)
    with progress_callback("patches", total=n_images, unit="patches") as advance:
        rep = build_patch_store(dataset, out, cfg, sources=source, default_mpp=default_mpp,
                                workers=workers, scheduler=scheduler, progress=advance,
                                include_disk=include_disk)
    console.print(f"[green]patch store[/green] {rep.out}: ", end="")
    console.print(rep.summary(), markup=False)
