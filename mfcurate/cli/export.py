"""``mfcurate export DATASET --format coco|geojson|parquet [--with-crops] --out DIR``."""

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
from mfcurate.cli._select import (
    ImagesOpt,
    IncludeRejectedOpt,
    LabelOpt,
    QAStateOpt,
    SourceOpt,
    SpeciesOpt,
    SplitOpt,
    TumourOpt,
    selection,
)


def register(app: typer.Typer) -> None:
    """Attach the command to the app."""
    app.command(
        "export",
        help="Export a dataset: COCO JSON per split (or per source), QuPath GeoJSON per "
             "image, or the Parquet tables; --with-crops adds PNG crops (+ masks) around "
             "objects.\n\n"
             "Example: [bold]mfcurate export ds --format coco --out coco/ --label "
             "mitotic_figure --qa-state accepted[/bold]\n\n"
             "Example: [bold]mfcurate export ds --format geojson --with-crops --out qp/[/bold]",
    )(export)


@reports_errors
def export(
    dataset: DatasetArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="coco, geojson or parquet.")]
    = "coco",
    by_source: Annotated[bool, typer.Option(help="One file per source instead of per split.")]
    = False,
    source: SourceOpt = None,
    split: SplitOpt = None,
    species: SpeciesOpt = None,
    tumour: TumourOpt = None,
    label: LabelOpt = None,
    qa_state: QAStateOpt = None,
    images: ImagesOpt = None,
    include_rejected: IncludeRejectedOpt = False,
    segmentation: Annotated[str, typer.Option(help="rle or polygon (COCO).")] = "rle",
    with_crops: Annotated[bool, typer.Option(
        "--with-crops", help="Also write PNG crops (and mask PNGs) around the objects.")]
    = False,
    crop_size: Annotated[int, typer.Option(help="Crop side in level-0 pixels.", min=8)] = 128,
    workers: WorkersOpt = 1,
    scheduler: SchedulerOpt = None,
) -> None:
    """Export the dataset."""
    from mfcurate.dataset import Dataset
    from mfcurate.errors import UsageError
    from mfcurate.export.coco import export_coco
    from mfcurate.export.dispatch import FORMATS, run_export

    if fmt != "coco" and fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}; choose coco, {', '.join(FORMATS)}")
    sel = selection(source=source, split=split, species=species, tumour=tumour, label=label,
                    qa_state=qa_state, images=images, include_rejected=include_rejected)
    ds = Dataset.open(dataset)
    sel.check(ds)
    if fmt == "coco":
        report = export_coco(ds, out, by_source=by_source, segmentation=segmentation,
                             selection=sel)
        for path, (n_img, n_ann) in report.files.items():
            console.print(f"[green]wrote[/green] {path}: {n_img} images, {n_ann} annotations")
        if not report.files:
            console.print("[yellow]warning:[/yellow] the selection holds no images; "
                          "nothing written")
    if fmt != "coco" or with_crops:
        with progress_callback("crops", unit="crops") as advance:
            done = run_export(ds, None if fmt == "coco" else fmt, out, with_crops=with_crops,
                              crop_size=crop_size, workers=workers, scheduler=scheduler,
                              progress=advance if with_crops else None, selection=sel)
        if "geojson" in done:
            g = done["geojson"]
            console.print(f"[green]wrote[/green] {g['files']} GeoJSON files "
                          f"({g['features']} features) under {out / 'geojson'}")
        if "parquet" in done:
            for name, f in done["parquet"]["files"].items():
                console.print(f"[green]wrote[/green] {out / name}: {f['rows']} rows")
        if "crops" in done:
            c = done["crops"]
            console.print(f"[green]wrote[/green] {c['crops']} crops ({c['masks']} masks) "
                          f"under {out / 'crops'}")
            if c["skipped_images"]:
                console.print(f"[yellow]warning:[/yellow] {len(c['skipped_images'])} image "
                              f"files missing, their objects have no crops (e.g. "
                              f"{c['skipped_images'][0]})")
