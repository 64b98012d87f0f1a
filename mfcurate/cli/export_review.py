"""``mfcurate export-review DATASET --out DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mfcurate.cli._common import DatasetArg, console, reports_errors


def register(app: typer.Typer) -> None:
    """Attach the command to the app."""
    app.command(
        "export-review",
        help="Write flagged (or all) masks as QuPath GeoJSON per image, PNG overlays and a "
             "contact sheet of the flagged masks.\n\n"
             "Example: [bold]mfcurate export-review ds --out review[/bold]; correct the "
             "GeoJSON in QuPath, then [bold]mfcurate import-review ds review[/bold].",
    )(export_review_cmd)


@reports_errors
def export_review_cmd(
    dataset: DatasetArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Review folder (created).")],
    include: Annotated[str, typer.Option(help="flagged or all.")] = "flagged",
    source: Annotated[list[str] | None, typer.Option(
        "--source", help="Only this source (repeatable).")] = None,
) -> None:
    """Export masks for review."""
    from mfcurate.review.export import export_review

    s = export_review(dataset, out, include=include, sources=source)
    console.print(f"[green]exported[/green] {s.objects} masks ({s.flagged} flagged) on "
                  f"{s.images} images -> {out}")
