"""``mfcurate score --detections DET.csv --dataset DATASET``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from mfcurate.cli._common import console, mpp_value, probability, reports_errors
from mfcurate.cli._select import (
    ImagesOpt,
    SourceOpt,
    SpeciesOpt,
    TumourOpt,
    image_keys_from,
    selection_options,
)


def register(app: typer.Typer) -> None:
    """Attach the command to the app."""
    app.command(
        "score",
        help="Score point detections with the MIDOG protocol (7.5 µm, greedy, pooled), "
             "overall and per tumour type; or compare runs with a Mann-Whitney U test.\n\n"
             "Example: [bold]mfcurate score --detections det/candidates.csv --dataset ds "
             "--split test --json score.json --plots plots[/bold]\n\n"
             "The paper's test set: [bold]mfcurate score --detections det/candidates.csv "
             "--dataset ds --split test --source midog++ --species human[/bold] (56 images, "
             "674 figures).  Per-tumour rows are 'source | tumour', never pooled across "
             "sources.\n\n"
             "Without --threshold the threshold is tuned on images no model trained on: a "
             "member on the validation images its training set aside, the ensemble on the "
             "run's validation images no member trained on (the run is found through "
             "det/summary.json, or --run), or on --tune-split / --tune-images (refused if a "
             "member trained on one); with no run record, 0.5.\n\n"
             "Per seed: [bold]--per-member DIR[/bold] writes DIR/seed-<s>.json for each "
             "member and DIR/ensemble.json.\n\n"
             "Compare: [bold]mfcurate score --compare a0.json --compare a1.json "
             "--against b0.json --against b1.json[/bold]",
    )(score)


@reports_errors
def score(
    detections: Annotated[Path | None, typer.Option(
        help="CSV with columns image,x,y,score (level-0 px).")] = None,
    dataset: Annotated[Path | None, typer.Option(help="Dataset folder.")] = None,
    split: Annotated[str, typer.Option(help="train, val, test, unassigned or all.")] = "test",
    threshold: Annotated[float | None, typer.Option(
        callback=probability, help="Fixed threshold (count detections with score > T).")] = None,
    mpp: Annotated[float | None, typer.Option(
        callback=mpp_value, help="µm/px for images that have none.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the scores as JSON.")]
    = None,
    plots: Annotated[Path | None, typer.Option(
        help="Folder for f1_per_tumour.png and pr_curve.png.")] = None,
    compare: Annotated[list[Path] | None, typer.Option(
        help="Score JSON of run A (one per seed; repeatable).")] = None,
    against: Annotated[list[Path] | None, typer.Option(
        help="Score JSON of run B (one per seed; repeatable).")] = None,
    metric: Annotated[str, typer.Option(help="Metric compared: f1, precision, recall.")] = "f1",
    source: SourceOpt = None,
    species: SpeciesOpt = None,
    tumour: TumourOpt = None,
    images: ImagesOpt = None,
    run: Annotated[Path | None, typer.Option(
        help="Training run folder (default: found from DET/summary.json).")] = None,
    tune_split: Annotated[str | None, typer.Option(
        help="Tune the threshold on this split (SPLIT or SOURCE:SPLIT).")] = None,
    tune_images: Annotated[list[Path] | None, typer.Option(
        help="Tune the threshold on the image keys listed in this file (repeatable).")]
    = None,
    per_member: Annotated[Path | None, typer.Option(
        help="Also score every ensemble member: write DIR/seed-<s>.json and "
             "DIR/ensemble.json.")] = None,
) -> None:
    """Score detections or compare runs."""
    from mfcurate.dataset import atomic_write_json
    from mfcurate.errors import UsageError

    if compare or against:
        if not compare or not against:
            raise UsageError("--compare and --against go together")
        from mfcurate.scoring.compare import compare_score_files

        res = compare_score_files(compare, against, metric)
        _print_compare(res)
        if json_out:
            atomic_write_json(json_out, res)
        return
    if detections is None or dataset is None:
        raise UsageError("give --detections DET.csv and --dataset DATASET")
    from mfcurate.dataset import Selection
    from mfcurate.scoring import score_detections
    from mfcurate.scoring.plots import plot_f1_per_tumour, plot_pr_curve

    sel = Selection.from_options(**selection_options(
        source=source, species=species, tumour=tumour, images=images))
    kwargs: dict[str, Any] = {"split": split, "threshold": threshold, "mpp": mpp, "selection": sel,
              "tune_split": tune_split, "tune_images": image_keys_from(tune_images),
              "run": run}
    if per_member is not None:
        from mfcurate.scoring.tuning import score_members

        for label, scored in score_members(detections, dataset, **kwargs):
            atomic_write_json(per_member / f"{label}.json", scored.to_dict())
            console.print(f"{label}: F1 {scored.overall.f1:.3f} at threshold "
                          f"{scored.threshold:.2f} ({scored.threshold_source})", markup=False)
        console.print(f"wrote {per_member}/seed-*.json and ensemble.json", markup=False)
    result = score_detections(detections, dataset, **kwargs)
    _print_table(result)
    for note in result.notes:
        console.print(f"note: {note}", markup=False)
    if json_out:
        atomic_write_json(json_out, result.to_dict())
    if plots:
        plot_f1_per_tumour(result, plots / "f1_per_tumour.png")
        plot_pr_curve(result, plots / "pr_curve.png")
        console.print(f"plots in {plots}")


def _print_table(result: object) -> None:
    from rich.table import Table
    from rich.text import Text

    from mfcurate.scoring.midog import ScoreResult

    assert isinstance(result, ScoreResult)  # noqa: S101 - typing aid
    n_mf = result.overall.tp + result.overall.fn
    title = (f"MIDOG protocol, split {result.split}: {len(result.per_image)} images, "
             f"{n_mf} mitotic figures; threshold {result.threshold:.2f} "
             f"({result.threshold_source})")
    t = Table(title=Text(title))
    for col in ("source | tumour", "TP", "FP", "FN", "precision", "recall", "F1"):
        t.add_column(col, justify="right" if len(col) <= 9 else "left")
    rows = [*sorted(result.per_tumour.items()), ("overall", result.overall)]
    for name, c in rows:
        t.add_row(Text(name), str(c.tp), str(c.fp), str(c.fn), f"{c.precision:.3f}",
                  f"{c.recall:.3f}", f"{c.f1:.3f}", style="bold" if name == "overall" else None)
    console.print(t)


def _print_compare(res: dict[str, object]) -> None:
    console.print(json.dumps(res, indent=2))
