"""``mfcurate export DATASET --format coco --out DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mfcurate.cli._common import DatasetArg, console, reports_errors


def register(app: typer.Typer) -> None:
    """Attach the command to the app."""
    app.command(
        "export",
        help="Export a dataset (COCO JSON per split, or per source).\n\n"
             "Example: [bold]mfcurate export ds --format coco --out coco/ --label "
             "mitotic_figure --qa-state accepted[/bold]",
    )(export)


@reports_errors
def export(
    dataset: DatasetArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="coco")] = "coco",
    by_source: Annotated[bool, typer.Option(help="One file per source instead of per split.")]
    = False,
    source: Annotated[list[str] | None, typer.Option(help="Only this source (repeatable).")]
    = None,
    label: Annotated[list[str] | None, typer.Option(help="Only this label (repeatable).")]
    = None,
    split: Annotated[list[str] | None, typer.Option(help="Only this split (repeatable).")]
    = None,
    qa_state: Annotated[list[str] | None, typer.Option(
        help="Only objects in this QA state (repeatable).")] = None,
    segmentation: Annotated[str, typer.Option(help="rle or polygon (COCO).")] = "rle",
) -> None:
    """Export the dataset."""
    from mfcurate.dataset import Dataset
    from mfcurate.errors import UsageError
    from mfcurate.export.coco import CocoFilters, export_coco

    ds = Dataset.open(dataset)
    if fmt != "coco":
        raise UsageError(f"unknown --format {fmt!r}; choose coco")
    report = export_coco(ds, out, by_source=by_source, segmentation=segmentation,
                         filters=CocoFilters(sources=source, labels=label, splits=split,
                                             qa_states=qa_state))
    for path, (n_img, n_ann) in report.files.items():
        console.print(f"[green]wrote[/green] {path}: {n_img} images, {n_ann} annotations")
