"""``mfcurate train-classifier DATASET``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mfcurate.cli._common import DatasetArg, console, reports_errors
from mfcurate.cli._select import (
    HoldoutOpt,
    ImagesOpt,
    LabelOpt,
    SourceOpt,
    SpeciesOpt,
    TumourOpt,
    selection_options,
)


def register(app: typer.Typer) -> None:
    """Attach the command to the app."""
    app.command(
        "train-classifier",
        help="Train the mask-fused ResNet18 (one model per seed, each on its own 90/10 split "
             "by image) on the patch store of a dataset.\n\n"
             "Example: [bold]mfcurate train-classifier ds --seeds 5 --out runs/omg[/bold]\n\n"
             "The pool is every patch except the held-out SOURCE:SPLIT images (default "
             "midog++:test, as the paper: CCMCT, CMC and ICPR test images are training data) "
             "and their copies in other sources; --source/--species/--tumour/--label narrow "
             "it for ablations.\n\n"
             "The run folder records the configuration, the splits (every member's training "
             "and validation images), a metrics CSV and the best checkpoint of every member; "
             "an interrupted run resumes member by member.",
    )(train_classifier)


@reports_errors
def train_classifier(
    dataset: DatasetArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder.")] = Path("runs/classifier"),
    patches: Annotated[Path | None, typer.Option(
        help="Patch store (default DATASET/patches).")] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Models (seeds/splits) to train.")] = 1,
    seed: Annotated[int, typer.Option(help="First seed.")] = 0,
    epochs: Annotated[int, typer.Option(min=1)] = 30,
    batch_size: Annotated[int, typer.Option(min=1)] = 512,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 1e-3,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 1e-4,
    label_smoothing: Annotated[float, typer.Option()] = 0.03,
    balance: Annotated[str, typer.Option(
        help="Class balancing: loss (inverse-frequency weights), sampler or none.")] = "loss",
    samples_per_epoch: Annotated[int | None, typer.Option(
        help="Fixed epoch length (default: every training patch once).")] = None,
    stain_sigma: Annotated[float, typer.Option(
        help="Tellez stain σ in the skimage>=0.18 convention (see docs/classifier.md).")] = 0.014,
    hflip: Annotated[float, typer.Option(help="Horizontal flip probability.")] = 0.5,
    vflip: Annotated[float, typer.Option(help="Vertical flip probability.")] = 0.5,
    rot90: Annotated[bool, typer.Option(help="Random 90° rotations.")] = True,
    mask: Annotated[bool, typer.Option(
        "--mask/--no-mask", help="Use the mask branch (--no-mask: RGB-only ablation).")] = True,
    pretrained: Annotated[Path | None, typer.Option(
        help="torchvision ResNet18 state dict (e.g. ImageNet weights) to start from.")] = None,
    val_fraction: Annotated[float, typer.Option(help="Images per split held out.")] = 0.1,
    holdout: HoldoutOpt = None,
    source: SourceOpt = None,
    species: SpeciesOpt = None,
    tumour: TumourOpt = None,
    label: LabelOpt = None,
    images: ImagesOpt = None,
    train_split: Annotated[list[str] | None, typer.Option(
        "--split", "--train-split",
        help="Only images of these dataset splits (default: every split; the holdout "
             "decides what is kept out).")] = None,
    max_train_mf: Annotated[int | None, typer.Option(
        help="Keep a seeded random subset of this many training mitotic figures per "
             "member (F1 vs number of training figures).")] = None,
    accelerator: Annotated[str, typer.Option(help="auto, cpu or gpu.")] = "auto",
    precision: Annotated[str, typer.Option(
        help="auto (16-mixed on GPU, 32 on CPU) or a Lightning precision.")] = "auto",
    num_workers: Annotated[int, typer.Option(min=0, help="Data-loader workers.")] = 0,
    progress: Annotated[bool, typer.Option(help="Show Lightning's progress bar.")] = True,
) -> None:
    """Train the classifier ensemble."""
    from mfcurate.classifier.train import TrainConfig, train_ensemble

    pool = selection_options(source=source, species=species, tumour=tumour, label=label,
                             images=images, split=train_split)
    cfg = TrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        label_smoothing=label_smoothing, balance=balance, stain_sigma=stain_sigma,
        hflip=hflip, vflip=vflip, rot90=rot90, use_mask=mask,
        pretrained=str(pretrained) if pretrained else None, val_fraction=val_fraction,
        seeds=seeds, seed=seed, samples_per_epoch=samples_per_epoch,
        holdout=list(holdout) if holdout else None, max_train_mf=max_train_mf,
        accelerator=accelerator, precision=precision, num_workers=num_workers,
        **{k: list(v) for k, v in pool.items()})
    store = patches or Path(dataset) / "patches"
    results = train_ensemble(store, out, cfg, progress=progress, console=console,
                             dataset=dataset)
    console.print(f"[green]trained[/green] {len(results)} model(s) -> {out} "
                  f"(ensemble.json, splits.json, seed-*/metrics.csv)")
