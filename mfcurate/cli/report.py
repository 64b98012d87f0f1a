"""``mfcurate report DATASET [--out report.html]``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mfcurate.cli._common import DatasetArg, console, reports_errors


def register(app: typer.Typer) -> None:
    """Attach the command to the app."""
    app.command(
        "report",
        help="Write a self-contained HTML report of a dataset: counts per source and tumour "
             "type (OMG-Net Table 1 layout), species and scanner mix, object sizes in µm², "
             "mask origin and QA state, example overlays per source.\n\n"
             "Example: [bold]mfcurate report ds --out ds-report.html[/bold]",
    )(report)


@reports_errors
def report(
    dataset: DatasetArg,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="HTML file (default: DATASET/report.html).")] = None,
    examples: Annotated[int, typer.Option(
        help="Example crops per label and source.", min=0)] = 4,
    crop_px: Annotated[int, typer.Option(help="Example crop side in level-0 px.", min=16)] = 96,
    seed: Annotated[int, typer.Option(help="Seed that picks the examples.")] = 0,
) -> None:
    """Write the report."""
    from mfcurate.report.html import build_report

    path = out or dataset / "report.html"
    info = build_report(dataset, path, examples_per_label=examples, crop_px=crop_px, seed=seed)
    console.print(f"[green]wrote[/green] {path} ({info['bytes'] / 1e6:.1f} MB, "
                  f"{info['figures']} figures, {info['images']} images, "
                  f"{info['objects']} objects)")
