"""``mfcurate demo``: build the synthetic sources and run the pipeline end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mfcurate.cli._common import console, reports_errors

#: Pipeline order of the steps the demo runs after ingest (those that are registered).
DEMO_STEPS = ["refine-masks", "harvest", "register-phh3", "build-patches", "train-classifier",
              "detect", "score", "export", "report"]


def register(app: typer.Typer) -> None:
    """Attach the command to the app."""
    app.command(
        "demo",
        help="Build synthetic copies of the sources (in their real formats), ingest them into "
             "one dataset and run every pipeline step on it; finishes in a few minutes on "
             "2 CPU cores.\n\nExample: [bold]mfcurate demo --out demo-out[/bold]",
    )(demo)


@reports_errors
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Demo folder (created).")] =
    Path("demo-out"),
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic data.")] = 0,
    sam_checkpoint: Annotated[Path | None, typer.Option(
        help="SAM checkpoint: use SAM instead of the classical segmenters.")] = None,
) -> None:
    """Run the demo."""
    from mfcurate.cli.info import print_counts, print_mask_summary
    from mfcurate.dataset import Dataset
    from mfcurate.steps import StepContext, all_steps
    from mfcurate.synth.demo import write_demo_sources

    out.mkdir(parents=True, exist_ok=True)
    console.rule("[bold]1. synthetic sources")
    specs = write_demo_sources(out / "sources", seed=seed)
    for key, spec in specs.items():
        console.print(f"  {key}: {spec.n_images} images, {sum(spec.counts.values())} objects "
                      f"in {spec.root}")
    ds_path = out / "dataset"
    steps = all_steps()
    ctx = StepContext(dataset=ds_path, work_dir=out, console=console, seed=seed)
    console.rule("[bold]2. ingest")
    steps["ingest"](ctx, sources=[{"key": k, "root": str(s.root), "options": s.options}
                                  for k, s in specs.items()])
    print_counts(Dataset.open(ds_path))
    options = {"sam_checkpoint": str(sam_checkpoint)} if sam_checkpoint else {}
    for i, name in enumerate([s for s in DEMO_STEPS if s in steps], start=3):
        console.rule(f"[bold]{i}. {name}")
        summary = steps[name](ctx, **options)
        console.print(summary)
    ds = Dataset.open(ds_path)
    console.rule("[bold]dataset")
    print_counts(ds)
    print_mask_summary(ds)
    console.print(f"[green]demo finished[/green]: dataset in {ds_path}, outputs in {out}")
