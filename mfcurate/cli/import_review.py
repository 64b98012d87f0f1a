"""``mfcurate import-review DATASET DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mfcurate.cli._common import DatasetArg, console, reports_errors


def register(app: typer.Typer) -> None:
    """Attach the command to the app."""
    app.command(
        "import-review",
        help="Read corrected GeoJSON from an export-review folder back: edited outlines "
             "become manual masks (qa_state amended), deleted objects or objects classed "
             "'Rejected' become qa_state rejected; nothing else changes.\n\n"
             "Example: [bold]mfcurate import-review ds review[/bold]",
    )(import_review_cmd)


@reports_errors
def import_review_cmd(
    dataset: DatasetArg,
    review_dir: Annotated[Path, typer.Argument(help="Folder written by export-review.",
                                               show_default=False)],
    accept_unchanged: Annotated[bool, typer.Option(
        help="Mark objects whose outline was left as it was as accepted.")] = False,
) -> None:
    """Import a corrected review."""
    from mfcurate.review.importer import import_review

    s = import_review(dataset, review_dir, accept_unchanged=accept_unchanged)
    console.print(f"[green]imported[/green] {s.files} files: {s.amended} amended, "
                  f"{s.rejected} rejected, {s.accepted} accepted, {s.unchanged} unchanged"
                  + (f", {s.unknown_features} unknown features ignored"
                     if s.unknown_features else ""))
