"""``mfcurate score --detections DET.csv --dataset DATASET``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mfcurate.cli._common import console, reports_errors


def register(app: typer.Typer) -> None:
    """Attach the command to the app."""
    app.command(
        "score",
        help="Score point detections with the MIDOG protocol (7.5 µm, greedy, pooled), "
             "overall and per tumour type; or compare runs with a Mann-Whitney U test.\n\n"
             "Example: [bold]mfcurate score --detections det/candidates.csv --dataset ds "
             "--split test --json score.json --plots plots[/bold]\n\n"
             "Without --threshold the threshold is tuned on the validation images in the "
             "file (if any) and applied to the scored split; otherwise 0.5.\n\n"
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
        help="Fixed threshold (count detections with score > T).")] = None,
    mpp: Annotated[float | None, typer.Option(help="µm/px for images that have none.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the scores as JSON.")]
    = None,
    plots: Annotated[Path | None, typer.Option(
        help="Folder for f1_per_tumour.png and pr_curve.png.")] = None,
    compare: Annotated[list[Path] | None, typer.Option(
        help="Score JSON of run A (one per seed; repeatable).")] = None,
    against: Annotated[list[Path] | None, typer.Option(
        help="Score JSON of run B (one per seed; repeatable).")] = None,
    metric: Annotated[str, typer.Option(help="Metric compared: f1, precision, recall.")] = "f1",
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
    from mfcurate.scoring import score_detections
    from mfcurate.scoring.plots import plot_f1_per_tumour, plot_pr_curve

    result = score_detections(detections, dataset, split=split, threshold=threshold, mpp=mpp)
    _print_table(result)
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    if json_out:
        atomic_write_json(json_out, result.to_dict())
    if plots:
        plot_f1_per_tumour(result, plots / "f1_per_tumour.png")
        plot_pr_curve(result, plots / "pr_curve.png")
        console.print(f"plots in {plots}")


def _print_table(result: object) -> None:
    from rich.table import Table

    from mfcurate.scoring.midog import ScoreResult

    assert isinstance(result, ScoreResult)  # noqa: S101 - typing aid
    t = Table(title=f"MIDOG protocol, split {result.split}, threshold {result.threshold:.2f} "
                    f"({result.threshold_source})")
    for col in ("group", "TP", "FP", "FN", "precision", "recall", "F1"):
        t.add_column(col, justify="left" if col == "group" else "right")
    rows = [*sorted(result.per_tumour.items()), ("overall", result.overall)]
    for name, c in rows:
        t.add_row(name, str(c.tp), str(c.fp), str(c.fn), f"{c.precision:.3f}",
                  f"{c.recall:.3f}", f"{c.f1:.3f}", style="bold" if name == "overall" else None)
    console.print(t)


def _print_compare(res: dict[str, object]) -> None:
    console.print(json.dumps(res, indent=2))
