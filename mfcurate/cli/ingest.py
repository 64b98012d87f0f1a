"""``mfcurate ingest SOURCE ROOT --out DATASET``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mfcurate.cli._common import console, err_console, mpp_value, positive, reports_errors


def register(app: typer.Typer) -> None:
    """Attach the command to the app."""
    app.command(
        "ingest",
        help="Read a source in its on-disk format into a dataset.\n\n"
             "Example: [bold]mfcurate ingest midog++ ~/data/MIDOGpp --out ds[/bold]\n\n"
             "Adding a second source leaves the first untouched; re-ingesting a source "
             "replaces exactly its rows.",
    )(ingest)


@reports_errors
def ingest(
    source: Annotated[str, typer.Argument(help="Source key (see `mfcurate sources`).",
                                          show_default=False)],
    root: Annotated[Path, typer.Argument(help="Folder as the source ships it.",
                                         show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset folder (created if new).")],
    strict: Annotated[bool, typer.Option(help="Fail when an image file is missing.")] = False,
    point_box_um: Annotated[float, typer.Option(
        callback=positive, help="Side in µm of the box derived for point annotations.")]
    = 12.5,
    default_mpp: Annotated[float | None, typer.Option(
        callback=mpp_value, help="µm/px for images whose file and source give none.")]
    = None,
    option: Annotated[list[str] | None, typer.Option(
        "--option", help="Adapter option KEY=VALUE (repeatable), see docs/sources.")] = None,
) -> None:
    """Ingest one source into a dataset."""
    from mfcurate.adapters import AdapterConfig, all_adapters
    from mfcurate.errors import UsageError
    from mfcurate.pipelines.ingest import ingest_source

    adapters = all_adapters()
    if source not in adapters:
        raise UsageError(f"unknown source {source!r}; choose one of: {', '.join(adapters)}")
    opts: dict[str, object] = {}
    for item in option or []:
        if "=" not in item:
            raise UsageError(f"--option {item!r} is not KEY=VALUE")
        k, v = item.split("=", 1)
        opts[k.strip()] = v.strip()
    config = AdapterConfig(point_box_um=point_box_um, strict=strict, default_mpp=default_mpp,
                           options=opts)
    report = ingest_source(source, root, out, config)
    console.print(f"[green]ingested[/green] {source}: {report.n_images} images, "
                  f"{report.n_objects} objects -> {out}")
    for line in report.duplicates:
        console.print(line, markup=False)
    if report.n_regions:
        fixed = (f" ({len(report.regions_repaired)} invalid outlines repaired)"
                 if report.regions_repaired else "")
        console.print(f"kept {report.n_regions} region polygons (tumour zones, exclusions)"
                      f"{fixed}", markup=False)
    if report.missing_images:
        err_console.print(f"[yellow]warning:[/yellow] {len(report.missing_images)} image files "
                          f"not found under {root} (annotations kept; e.g. "
                          f"{report.missing_images[0]}); use --strict to fail instead")
    if report.dropped:
        err_console.print(f"[yellow]warning:[/yellow] {len(report.dropped)} annotations lie "
                          f"wholly outside their image and were dropped (e.g. {report.dropped[0]})")
    if report.skipped:
        err_console.print(f"[yellow]warning:[/yellow] {len(report.skipped)} annotations left "
                          f"out (e.g. {report.skipped[0]})")
