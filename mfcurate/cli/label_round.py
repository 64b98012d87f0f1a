"""``mfcurate label-round new|import|resolve``: label review rounds with several raters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mfcurate.cli._common import DatasetArg, console, reports_errors

RoundArg = Annotated[Path, typer.Argument(help="Round folder (written by `label-round new`).",
                                          show_default=False)]


def register(app: typer.Typer) -> None:
    """Attach the ``label-round`` command group to the app."""
    sub = typer.Typer(
        help="Label review rounds: several raters vote MF / not MF / uncertain on detector "
             "candidates or chosen objects (QuPath GeoJSON or a CSV sheet), then a "
             "consensus rule writes the labels into the dataset.\n\n"
             "Example: [bold]mfcurate label-round new ds --candidates det/candidates.csv "
             "--raters r1,r2,r3 --out round1[/bold]",
        no_args_is_help=True, rich_markup_mode="rich")
    sub.command("new", help="Choose the objects and write one package per rater; rerun "
                            "with the same options, it completes an interrupted round (a "
                            "finished one is left as it is).")(new_cmd)
    sub.command("import", help="Read raters' files back (QuPath GeoJSON or CSV sheets); "
                               "idempotent.")(import_cmd)
    sub.command("resolve", help="Consensus per object, written into the dataset's labels "
                                "layer; agreement figures into the round folder.")(resolve_cmd)
    app.add_typer(sub, name="label-round")


def _plain(text: str) -> None:
    console.print(text, markup=False, highlight=False)


@reports_errors
def new_cmd(
    dataset: DatasetArg,
    raters: Annotated[str, typer.Option(help="Comma-separated rater names.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Round folder to create.")],
    candidates: Annotated[Path | None, typer.Option(
        help="candidates.csv or detections.csv of `mfcurate detect`.")] = None,
    min_score: Annotated[float, typer.Option(help="Keep candidates with score >= this.")] = 0.5,
    match_um: Annotated[float, typer.Option(
        help="A candidate this close (µm) to an object is that object.")] = 4.0,
    include: Annotated[list[str] | None, typer.Option(
        help="Also review the dataset's uncertain and/or flagged objects (repeatable or "
             "comma-separated).")] = None,
    sample: Annotated[int, typer.Option(min=0, help="Add a seeded sample of N objects.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the sample and the raters' orders.")] = 0,
    source: Annotated[list[str] | None, typer.Option(help="Only these sources.")] = None,
    split: Annotated[list[str] | None, typer.Option(help="Only these splits.")] = None,
    tumour: Annotated[list[str] | None, typer.Option(help="Only these tumour types.")] = None,
    round_id: Annotated[str | None, typer.Option(
        "--id", help="Round id recorded with every vote (default: the folder name).")] = None,
) -> None:
    """Start a round."""
    from mfcurate.dataset import Selection
    from mfcurate.labelround.ops import new_round, parse_raters

    inc = [v.strip() for item in include or [] for v in item.split(",") if v.strip()]
    sel = Selection.from_options(sources=source, splits=split, tumour_types=tumour)
    r = new_round(dataset, out, parse_raters(raters), candidates=candidates,
                  min_score=min_score, match_um=match_um, include=inc, sample=sample,
                  seed=seed, selection=sel, round_id=round_id)
    if r.finished_before:
        _plain(f"round {r.round.round_id} is complete in {r.folder}: nothing to do")
    else:
        again = f", {r.reused} of them committed by the interrupted run" if r.reused else ""
        _plain(f"round {r.round.round_id}: {len(r.round.objects)} objects for "
               f"{len(r.round.raters)} raters ({r.new_detections} new detections in the "
               f"dataset's detect part{again})")
    for k, v in sorted(r.counts.items()):
        _plain(f"  {k}: {v}")
    for rater, folder in r.packages.items():
        _plain(f"  {rater}: {folder}")


@reports_errors
def import_cmd(
    round_dir: RoundArg,
    files: Annotated[list[Path], typer.Argument(help="Rater files: GeoJSON exported by "
                                                     "QuPath or CSV sheets (a folder: its "
                                                     "*.geojson, *.json, *.csv).",
                                                show_default=False)],
    rater: Annotated[str | None, typer.Option(
        help="Whose files these are (default: told by the files or their folder).")] = None,
    replace: Annotated[bool, typer.Option(
        help="Let these files replace the rater's votes on the same objects from other "
             "files.")] = False,
    dataset: Annotated[Path | None, typer.Option(
        help="Dataset folder, if it moved since `new`.")] = None,
) -> None:
    """Import votes."""
    from mfcurate.labelround.ops import import_votes

    r = import_votes(round_dir, files, rater=rater, replace=replace, dataset=dataset)
    _plain(f"imported {r.files} files ({r.unchanged_files} unchanged): {r.added} votes added, "
           f"{r.changed} changed, {r.removed} removed, {r.abstained} left unclassified"
           + (f", {r.ignored} features drawn by raters ignored" if r.ignored else ""))
    _plain(f"votes now: {r.votes} (" + ", ".join(f"{k} {v}" for k, v in r.by_rater.items())
           + ")")


@reports_errors
def resolve_cmd(
    round_dir: RoundArg,
    rule: Annotated[str, typer.Option(help="majority, unanimous or senior.")] = "majority",
    senior: Annotated[str | None, typer.Option(
        help="Rater whose vote settles disagreements.")] = None,
    dataset: Annotated[Path | None, typer.Option(
        help="Dataset folder, if it moved since `new`.")] = None,
) -> None:
    """Resolve a round."""
    from mfcurate.labelround.ops import resolve_round

    r = resolve_round(round_dir, rule, senior, dataset=dataset)
    ov = r.agreement["overall"]
    fk = ov["fleiss_kappa"]
    _plain(f"resolved {r.voted} of {r.objects} objects: "
           + ", ".join(f"{k} {v}" for k, v in r.by_label.items()))
    _plain("decided by: " + ", ".join(f"{k} {v}" for k, v in r.by_decided.items()))
    eq = "-" if r.equivocal is None else f"{100 * r.equivocal:.1f} %"
    un = "-" if r.unresolved is None else f"{100 * r.unresolved:.1f} %"
    _plain(f"equivocal {eq}, unresolved {un}; Fleiss' kappa "
           f"{'n/a' if fk is None else f'{fk:.3f}'}")
    _plain(f"wrote {r.files['resolution']}, {r.files['agreement']}, {r.files['plot']}")
