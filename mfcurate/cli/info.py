"""``mfcurate info DATASET``: the counts table (OMG-Net Table 1 layout) and mask/QA summary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mfcurate.cli._common import DatasetArg, console, reports_errors
from mfcurate.cli._select import (
    ImagesOpt,
    SourceOpt,
    SpeciesOpt,
    SplitOpt,
    TumourOpt,
    selection,
)

if TYPE_CHECKING:
    from mfcurate.dataset import Selection


def register(app: typer.Typer) -> None:
    """Attach the command to the app."""
    app.command("info", help="Print a dataset's counts per source and tumour type, and its "
                             "mask/QA summary.\n\nExample: [bold]mfcurate info ds[/bold]")(info)


@reports_errors
def info(
    dataset: DatasetArg,
    verify: Annotated[bool, typer.Option(help="Also check every file's checksum.")] = False,
    source: SourceOpt = None,
    split: SplitOpt = None,
    species: SpeciesOpt = None,
    tumour: TumourOpt = None,
    images: ImagesOpt = None,
) -> None:
    """Show the dataset's counts."""
    from mfcurate.dataset import Dataset

    sel = selection(source=source, split=split, species=species, tumour=tumour, images=images)
    ds = Dataset.open(dataset)
    print_counts(ds, sel.check(ds))
    print_mask_summary(ds)
    print_label_rounds(ds)
    from mfcurate.regions import describe

    for src in ds.sources:  # the label set a source was read with (TUPAC16)
        if label_set := (ds.source_info(src).get("details") or {}).get("label_set"):
            console.print(f"{src}: {label_set}", markup=False, soft_wrap=True)
        if regions := describe(ds.regions(src)):  # tumour zones kept at ingest (CMC, CCMCT)
            console.print(f"{src}: {regions}", markup=False, soft_wrap=True)
    if verify:
        problems = ds.verify()
        if problems:
            from mfcurate.errors import DatasetError

            raise DatasetError(f"{dataset}: " + "; ".join(problems))
        console.print("[green]all files match their manifest checksums[/green]")


def print_counts(ds: object, sel: Selection | None = None) -> None:
    """Print the counts table of a dataset (of a selection of it; default: all but rejected)."""
    from rich.table import Table

    from mfcurate.dataset import Dataset
    from mfcurate.pipelines.summary import counts_table

    if not isinstance(ds, Dataset):
        return
    rows = counts_table(ds, sel)
    t = Table(title=f"{ds.root}: images and objects per source and tumour type")
    for col in ("source", "tumour type", "images", "MF", "mitotic-like", "other"):
        t.add_column(col, justify="right" if col not in ("source", "tumour type") else "left")
    tot = [0, 0, 0, 0]
    last = None
    for r in rows:
        t.add_row(r.source if r.source != last else "", r.tumour_type, f"{r.images:,}",
                  f"{r.mitotic_figure:,}", f"{r.mitotic_like:,}", f"{r.other:,}")
        last = r.source
        for i, v in enumerate((r.images, r.mitotic_figure, r.mitotic_like, r.other)):
            tot[i] += v
    t.add_section()
    t.add_row("total", "", *(f"{v:,}" for v in tot), style="bold")
    console.print(t)


def print_mask_summary(ds: object) -> None:
    """Print mask coverage, mask origins and the QA summary per source."""
    from rich.table import Table

    from mfcurate.dataset import Dataset
    from mfcurate.review.summary import QA_COLUMNS, qa_summary

    if not isinstance(ds, Dataset):
        return
    t = Table(title="masks and QA per source")
    for col in QA_COLUMNS:
        t.add_column(col, overflow="fold")
    for r in qa_summary(ds):
        t.add_row(*r.cells())
    console.print(t)


def print_label_rounds(ds: object) -> None:
    """Print the agreement of the dataset's label rounds (nothing when it has none)."""
    from rich.table import Table

    from mfcurate.dataset import Dataset
    from mfcurate.labelround.summary import ROW_COLUMNS, agreement_rows, dataset_agreement

    if not isinstance(ds, Dataset):
        return
    rows = agreement_rows(dataset_agreement(ds))
    if not rows:
        return
    t = Table(title="label rounds: agreement (overall and per tumour type)")
    for col in ROW_COLUMNS:
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(*r)
    console.print(t)
