"""``mfcurate publish DATASET (--dry-run | --zenodo | --sandbox | --url BASE)``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from mfcurate.cli._common import DatasetArg, console, err_console, reports_errors


def register(app: typer.Typer) -> None:
    """Attach the command to the app."""
    app.command(
        "publish",
        help="Build the release package (tables, archives, manifest.json with md5+sha256, "
             "croissant.json, DATASHEET.md, CITATION.cff) and deposit it on Zenodo.\n\n"
             "Example: [bold]mfcurate publish ds --dry-run --out release/[/bold]\n\n"
             "Example: [bold]ZENODO_TOKEN=... mfcurate publish ds --sandbox --metadata "
             "zenodo.toml --out release/[/bold]\n\n"
             "The licence is derived from the sources (the most restrictive wins); an "
             "interrupted upload resumes when the same command is run again.",
    )(publish)


def parse_size(text: str) -> int:
    """``"10GB"``, ``"500 MB"``, ``"1e9"`` -> bytes (decimal units)."""
    m = re.fullmatch(r"\s*([0-9.eE+]+)\s*([kKmMgGtT]?)[bB]?\s*", text)
    if not m:
        from mfcurate.errors import UsageError

        raise UsageError(f"--archive-size {text!r} is not a size like 10GB or 500MB")
    mult = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}[m.group(2).lower()]
    return int(float(m.group(1)) * mult)


@reports_errors
def publish(
    dataset: DatasetArg,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Package folder (default: DATASET-publish beside the dataset).")]
    = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only build the package.")]
    = False,
    zenodo: Annotated[bool, typer.Option("--zenodo", help="Deposit on zenodo.org.")] = False,
    sandbox: Annotated[bool, typer.Option("--sandbox", help="Deposit on sandbox.zenodo.org.")]
    = False,
    url: Annotated[str | None, typer.Option(
        "--url", help="API root of another Zenodo/InvenioRDM, e.g. https://zenodo.org/api.")]
    = None,
    token_file: Annotated[Path | None, typer.Option(
        help="File holding the access token (default: $ZENODO_TOKEN).")] = None,
    metadata: Annotated[Path | None, typer.Option(
        "--metadata", help="JSON or TOML with Zenodo deposit fields (title, creators, "
                           "description, keywords, communities...).")] = None,
    license_: Annotated[str | None, typer.Option(
        "--license", help="Release licence; may only be more restrictive than the sources'.")]
    = None,
    version: Annotated[str, typer.Option(help="Release version.")] = "1.0.0",
    no_publish: Annotated[bool, typer.Option(
        "--no-publish", help="Upload and verify, but leave the record as a draft.")] = False,
    new_version_of: Annotated[str | None, typer.Option(
        help="Make a new version of this (latest) published record id.")] = None,
    with_crops: Annotated[bool, typer.Option(
        "--with-crops", help="Add PNG crops (+ masks) around objects as tar archives.")]
    = False,
    crop_size: Annotated[int, typer.Option(help="Crop side in level-0 px.", min=8)] = 128,
    with_images: Annotated[bool, typer.Option(
        "--with-images", help="Add the source image files as tar archives (check the "
                              "sources' terms first).")] = False,
    archive_size: Annotated[str, typer.Option(help="Largest archive, e.g. 10GB.")] = "10GB",
    source: Annotated[list[str] | None, typer.Option(
        help="Only this source (repeatable).")] = None,
    restart: Annotated[bool, typer.Option(
        help="Forget the saved deposit state and start a new draft.")] = False,
    rebuild: Annotated[bool, typer.Option(help="Rebuild the package even if up to date.")]
    = False,
) -> None:
    """Build and optionally deposit the release."""
    from mfcurate.cli._common import progress_callback
    from mfcurate.errors import UsageError
    from mfcurate.publish.service import publish_dataset

    if not dry_run and not (zenodo or sandbox or url):
        raise UsageError("choose --dry-run, or a target: --zenodo, --sandbox or --url BASE")
    if dry_run and (zenodo or sandbox or url):
        raise UsageError("--dry-run builds the package only; drop --zenodo/--sandbox/--url")
    pkg_dir = out or dataset.with_name(f"{dataset.resolve().name}-publish")

    def say(msg: str) -> None:
        err_console.print(f"  {msg}", highlight=False)

    with progress_callback("uploading", unit="B") as advance:
        result = publish_dataset(
            dataset, pkg_dir, dry_run=dry_run, zenodo=zenodo, sandbox=sandbox, url=url,
            token_file=token_file, metadata_file=metadata, license=license_,
            version=version, publish=not no_publish, new_version_of=new_version_of,
            include_crops=with_crops, include_images=with_images, crop_size=crop_size,
            archive_bytes=parse_size(archive_size), sources=source, restart=restart,
            rebuild=rebuild, log=say, progress=lambda n: advance(n=0, objects=n))
    console.print(f"[green]package[/green] {result['package']}: {result['files']} files, "
                  f"{result['bytes'] / 1e6:.1f} MB, licence {result['license']}"
                  f"{' (reused)' if result['reused'] else ''}")
    for w in result["warnings"]:
        err_console.print(f"[yellow]warning:[/yellow] {w}", highlight=False)
    if dry_run and result["problems"]:
        err_console.print("[yellow]before a real publish:[/yellow] " +
                          "; ".join(result["problems"]), highlight=False)
    dep = result["deposit"]
    if dep:
        state = "published" if dep["published"] else "draft (not published)"
        console.print(f"[green]{state}[/green]: deposition {dep['id']}, DOI {dep['doi']}, "
                      f"{dep['url']} ({len(dep['uploaded'])} uploaded, "
                      f"{len(dep['skipped'])} already there)")
