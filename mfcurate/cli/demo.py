"""``mfcurate demo``: build the synthetic sources and run ``pipelines/demo.toml`` on them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mfcurate.cli._common import console, reports_errors

#: The demo recipe of the repository (what ``mfcurate demo`` runs).
DEMO_RECIPE = Path(__file__).resolve().parents[2] / "pipelines" / "demo.toml"


def register(app: typer.Typer) -> None:
    """Attach the command to the app."""
    app.command(
        "demo",
        help="Write synthetic copies of every source (in their real on-disk formats) into "
             "OUT/sources, then run the demo recipe (pipelines/demo.toml: ingest, masks, "
             "harvest, classifier, score, export, report, publish dry run) with OUT as its "
             "work dir. Finishes in a few minutes on 2 CPU cores.\n\n"
             "Example: [bold]mfcurate demo --out demo-out[/bold]",
    )(demo)


@reports_errors
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Demo folder (created).")] =
    Path("demo-out"),
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic data.")] = 0,
    recipe: Annotated[Path, typer.Option(help="Recipe to run.")] = DEMO_RECIPE,
    sam_checkpoint: Annotated[Path | None, typer.Option(
        help="SAM checkpoint: segment with SAM instead of the classical defaults.")] = None,
    sam_model: Annotated[str, typer.Option(help="SAM model type of the checkpoint.")] = "vit_h",
) -> None:
    """Run the demo."""
    from mfcurate.cli.info import print_counts, print_mask_summary
    from mfcurate.dataset import Dataset
    from mfcurate.pipelines.steps import all_steps
    from mfcurate.recipe import Recipe, run_recipe, step_name
    from mfcurate.synth.sources import generators

    plan = Recipe.load(recipe)
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    console.rule("[bold]synthetic sources")
    gens = generators()
    for src in plan.sources:
        root = Path(src["root"])
        root = root if root.is_absolute() else out / root
        spec = gens[src["key"]](root, seed=seed)
        console.print(f"  {src['key']}: {spec.n_images} images, "
                      f"{sum(spec.counts.values())} objects in {root}")
    registered = all_steps()
    missing = [s for s in plan.steps if step_name(s) not in registered]
    if missing:
        console.print(f"[yellow]not installed in this build, skipped:[/yellow] {missing}")
        plan.steps = {k: v for k, v in plan.steps.items() if step_name(k) in registered}
    overrides: dict[str, object] = {"work_dir": str(out), "seed": seed}
    if sam_checkpoint is not None:
        for name, fn in registered.items():
            for key in (k for k in plan.steps if step_name(k) == name):
                if "sam_checkpoint" in fn.__code__.co_varnames:
                    overrides[f"steps.{key}.sam_checkpoint"] = str(sam_checkpoint.resolve())
                    overrides[f"steps.{key}.sam_model"] = sam_model
    result = run_recipe(plan, overrides=overrides, console=console)
    ds = Dataset.open(result["dataset"])
    console.rule("[bold]dataset")
    print_counts(ds)
    print_mask_summary(ds)
    console.print(f"[green]demo finished[/green]: dataset in {result['dataset']}, "
                  f"outputs in {out}")
