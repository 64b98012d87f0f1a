"""Training with PyTorch Lightning: one model per seed, each on its own 90/10 split by image.

A run folder holds everything needed to reproduce and use the run::

    RUN/config.json        # every hyper-parameter, the patch store, library versions
    RUN/splits.json        # the pool's selection and holdout; per member: seed, train and
                           # validation image keys, patch counts
    RUN/val_images.txt     # image keys no member trained on (the ensemble may tune on these)
    RUN/seed-<s>/metrics.csv  # Lightning CSVLogger (train_loss, val_loss, val_acc, val_f1, lr)
    RUN/seed-<s>/best.ckpt    # Lightning checkpoint (weights) with the lowest val_loss
    RUN/seed-<s>/model.pt     # the best weights + model config, what `detect` loads
    RUN/ensemble.json      # the members' model.pt files (written when all are done)

Splits are drawn **by image** (neighbouring crops of one image would leak between train and
validation otherwise) with ``numpy.random.default_rng(seed)`` over the sorted image keys.  A
member whose ``model.pt`` exists is not retrained, so an interrupted ``--seeds 5`` run resumes.

The pool is chosen as the paper did (:mod:`mfcurate.classifier.pool`): every patch of the
store except those of the held-out ``SOURCE:SPLIT`` pairs (default ``midog++:test``) and
their copies in other sources, optionally filtered by source, species, tumour type, label or
split for ablations.  ``max_train_mf`` keeps a seeded random subset of each member's training
mitotic figures (F1 against the number of training figures).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    WeightedRandomSampler,
)
from torch.utils.data import Dataset as TorchDataset

from mfcurate.classifier.augment import random_dihedral, random_stain
from mfcurate.classifier.model import IMAGENET_MEAN, IMAGENET_STD, build_model
from mfcurate.classifier.patches import PatchStore
from mfcurate.classifier.pool import pool_positions, pool_selection
from mfcurate.dataset import Dataset, Selection, atomic_write_bytes, atomic_write_json
from mfcurate.errors import DatasetError, UsageError

try:
    import lightning as L
except ImportError:  # pragma: no cover - lightning is a declared dependency
    L = None  # type: ignore[assignment]


@dataclass
class TrainConfig:
    """Hyper-parameters (every one is a CLI option of ``train-classifier``).

    Defaults follow the paper where it is sound: AdamW at 1e-3, cosine annealing, 30 epochs,
    horizontal/vertical flips; the authors' code where the paper is silent or unsound: label
    smoothing 0.03, stain sigma 0.014 (see ``docs/classifier.md``).  The paper's batch of 8000
    is replaced by 512, which fits any GPU and gives more than a handful of steps per epoch on
    smaller stores.
    """

    epochs: int = 30
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.03
    balance: str = "loss"
    stain_sigma: float = 0.014
    hflip: float = 0.5
    vflip: float = 0.5
    rot90: bool = True
    use_mask: bool = True
    pretrained: str | None = None
    val_fraction: float = 0.1
    seeds: int = 1
    seed: int = 0
    samples_per_epoch: int | None = None
    holdout: list[str] | None = None
    sources: list[str] | None = None
    species: list[str] | None = None
    tumour_types: list[str] | None = None
    labels: list[str] | None = None
    splits: list[str] | None = None
    image_keys: list[str] | None = None
    max_train_mf: int | None = None
    accelerator: str = "auto"
    precision: str = "auto"
    num_workers: int = 0

    def check(self) -> None:
        """Raise :class:`UsageError` for values that cannot work."""
        if self.balance not in ("loss", "sampler", "none"):
            raise UsageError(f"--balance must be loss, sampler or none (got {self.balance!r})")
        if not 0.0 <= self.val_fraction < 1.0:
            raise UsageError("--val-fraction must lie in [0, 1)")
        if self.samples_per_epoch is not None and self.samples_per_epoch < 1:
            raise UsageError("--samples-per-epoch must be positive")
        if self.epochs < 1 or self.batch_size < 1 or self.seeds < 1:
            raise UsageError("--epochs, --batch-size and --seeds must be positive")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise UsageError("--label-smoothing must lie in [0, 1)")
        if self.max_train_mf is not None and self.max_train_mf < 1:
            raise UsageError("--max-train-mf must be positive")

    def pool_filters(self) -> dict[str, Any]:
        """The Selection filters of the training pool (unset ones left out)."""
        return {k: getattr(self, k) for k in ("sources", "species", "tumour_types", "labels",
                                              "splits", "image_keys") if getattr(self, k)}


def split_by_image(image_keys: Sequence[str], val_fraction: float,
                   seed: int) -> tuple[list[str], list[str]]:
    """Split distinct image keys into train and validation sides.

    ``round(val_fraction * n)`` images (at least one when ``val_fraction > 0`` and there are
    two or more images) go to validation; the draw is ``default_rng(seed).permutation`` of
    the sorted keys, so it depends on nothing but the keys and the seed.
    """
    keys = sorted(set(image_keys))
    n_val = round(val_fraction * len(keys))
    if val_fraction > 0 and len(keys) >= 2:
        n_val = max(1, n_val)
    n_val = min(n_val, max(len(keys) - 1, 0))
    perm = np.random.default_rng(seed).permutation(len(keys))
    val = sorted(keys[i] for i in perm[:n_val])
    train = sorted(keys[i] for i in perm[n_val:])
    return train, val


class PatchBatches(TorchDataset[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]):
    """Map-style dataset whose items are whole batches (index = list of positions).

    Used with a :class:`BatchSampler` and ``batch_size=None``, so one batch is one fancy
    index into the memory-mapped shards.  Items are ``(rgb (B, 3, S, S) uint8,
    mask (B, 1, S, S) uint8, target (B,) int64)``.
    """

    def __init__(self, store: PatchStore, positions: np.ndarray) -> None:
        self.store = store
        self.positions = np.asarray(positions, dtype=np.int64)

    def __len__(self) -> int:
        """Number of patches."""
        return len(self.positions)

    def __getitem__(self, idx: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The batch at (local) positions ``idx``."""
        rgb, mask, target = self.store.get(self.positions[np.asarray(idx, dtype=np.int64)])
        return (torch.from_numpy(rgb).permute(0, 3, 1, 2), torch.from_numpy(mask)[:, None],
                torch.from_numpy(target))


def make_loader(store: PatchStore, positions: np.ndarray, batch_size: int, *, train: bool,
                balance: str = "none", seed: int = 0, num_workers: int = 0,
                samples_per_epoch: int | None = None) -> DataLoader[Any]:
    """A loader of whole batches from ``positions`` (shuffled/balanced when ``train``).

    ``samples_per_epoch`` (training only) fixes the epoch length: drawn with replacement by
    the balanced sampler, without replacement (cycling) otherwise.
    """
    ds = PatchBatches(store, positions)
    gen = torch.Generator().manual_seed(seed)
    sampler: Any
    if train and balance == "sampler":
        y = store.targets[positions]
        counts = np.bincount(y, minlength=2).astype(np.float64)
        w = 1.0 / np.maximum(counts[y], 1.0)
        sampler = WeightedRandomSampler(w.tolist(),
                                        num_samples=samples_per_epoch or len(y),
                                        replacement=True, generator=gen)
    elif train:
        sampler = RandomSampler(range(len(positions)), generator=gen,
                                num_samples=samples_per_epoch)
    else:
        sampler = SequentialSampler(range(len(positions)))
    return DataLoader(ds, sampler=BatchSampler(sampler, batch_size, drop_last=False),
                      batch_size=None, num_workers=num_workers,
                      persistent_workers=num_workers > 0)


def class_weights(targets: np.ndarray, balance: str) -> list[float]:
    """Loss weights: inverse class frequency normalised to mean 1 (``balance="loss"``)."""
    if balance != "loss":
        return [1.0, 1.0]
    counts = np.bincount(targets, minlength=2).astype(np.float64)
    if (counts == 0).any():
        return [1.0, 1.0]
    w = counts.sum() / (2.0 * counts)
    return [float(v) for v in w]


class MitosisModule(L.LightningModule):
    """Lightning wrapper: augmentation on the batch, weighted smoothed CE, AdamW + cosine.

    Args:
        config: a :class:`TrainConfig` as dict.
        weights: the two class weights of the loss.
    """

    def __init__(self, config: dict[str, Any], weights: Sequence[float]) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.cfg = TrainConfig(**config)
        self.model = build_model(self.cfg.use_mask, self.cfg.pretrained)
        self.class_w: torch.Tensor
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("class_w", torch.tensor(list(weights), dtype=torch.float32))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self._val: list[torch.Tensor] = []

    def prepare(self, rgb: torch.Tensor, mask: torch.Tensor,
                train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 batch -> normalised float input (augmented when ``train``).

        Runs in float32 even under mixed precision (the stain round trip through optical
        density is not meant for float16).
        """
        with torch.autocast(device_type=rgb.device.type, enabled=False):
            x = rgb.float() / 255.0
            m = mask.float()
            if train:
                x, m = random_dihedral(x, m, self.cfg.hflip, self.cfg.vflip, self.cfg.rot90)
                x = random_stain(x, self.cfg.stain_sigma)
            return ((x - self.mean) / self.std).contiguous(), m.contiguous()

    def forward(self, rgb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits of a prepared batch."""
        out: torch.Tensor = self.model(rgb, mask)
        return out

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), y, weight=self.class_w,
                               label_smoothing=self.cfg.label_smoothing)

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        """One optimisation step."""
        rgb, mask, y = batch
        x, m = self.prepare(rgb, mask, train=True)
        loss = self._loss(self(x, m), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        """Validation loss plus patch-level predictions for accuracy and F1."""
        rgb, mask, y = batch
        x, m = self.prepare(rgb, mask, train=False)
        logits = self(x, m)
        self.log("val_loss", self._loss(logits, y), on_epoch=True, batch_size=len(y))
        self._val.append(torch.stack([logits.argmax(1), y]).cpu())

    def on_validation_epoch_end(self) -> None:
        """Log patch-level accuracy and F1 of the mitotic class."""
        if not self._val:
            return
        p, y = torch.cat(self._val, dim=1)
        self._val.clear()
        tp = float(((p == 1) & (y == 1)).sum())
        fp = float(((p == 1) & (y == 0)).sum())
        fn = float(((p == 0) & (y == 1)).sum())
        self.log("val_acc", float((p == y).float().mean()))
        self.log("val_f1", 2 * tp / max(2 * tp + fp + fn, 1e-9))

    def configure_optimizers(self) -> Any:
        """AdamW with per-epoch cosine annealing to zero."""
        opt = torch.optim.AdamW(self.parameters(), lr=self.cfg.lr,
                                weight_decay=self.cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(self.cfg.epochs, 1))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


@dataclass
class MemberResult:
    """One trained model of the ensemble."""

    seed: int
    model_path: Path
    n_train: int
    n_val: int
    best_val_loss: float | None
    n_train_positive: int = 0


def _precision(cfg: TrainConfig, accelerator: str) -> str:
    if cfg.precision != "auto":
        return cfg.precision
    return "16-mixed" if accelerator == "gpu" else "32-true"


def _accelerator(cfg: TrainConfig) -> str:
    if cfg.accelerator != "auto":
        return cfg.accelerator
    return "gpu" if torch.cuda.is_available() else "cpu"


def train_member(store: PatchStore, cfg: TrainConfig, seed: int, train_pos: np.ndarray,
                 val_pos: np.ndarray, out: Path, progress: bool = False) -> MemberResult:
    """Train one model and write ``out/{best.ckpt,metrics.csv,model.pt}``."""
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    L.seed_everything(seed, workers=True, verbose=False)
    weights = class_weights(store.targets[train_pos], cfg.balance)
    module = MitosisModule(asdict(cfg), weights)
    train_dl = make_loader(store, train_pos, cfg.batch_size, train=True, balance=cfg.balance,
                           seed=seed, num_workers=cfg.num_workers,
                           samples_per_epoch=cfg.samples_per_epoch)
    val_dl = make_loader(store, val_pos, cfg.batch_size, train=False,
                         num_workers=cfg.num_workers) if len(val_pos) else None
    monitor = "val_loss" if val_dl is not None else "train_loss"
    ckpt = ModelCheckpoint(dirpath=out, filename="best", monitor=monitor, mode="min",
                           save_top_k=1, save_last=False, save_weights_only=True)
    accelerator = _accelerator(cfg)
    trainer = L.Trainer(
        max_epochs=cfg.epochs, accelerator=accelerator, devices=1,
        precision=_precision(cfg, accelerator),  # type: ignore[arg-type]
        logger=CSVLogger(out.parent, name=out.name, version=""),
        callbacks=[ckpt, LearningRateMonitor(logging_interval="epoch")],
        enable_progress_bar=progress, enable_model_summary=False, log_every_n_steps=1,
        num_sanity_val_steps=0, deterministic=False,
    )
    trainer.fit(module, train_dl, val_dl)
    best = ckpt.best_model_path
    state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
    model_state = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    best_score = ckpt.best_model_score
    payload = {
        "state_dict": model_state, "use_mask": cfg.use_mask,
        "patch": store.config.__dict__, "seed": seed,
        "best_" + monitor: float(best_score) if best_score is not None else None,
    }
    model_path = out / "model.pt"
    tmp = out / ".model.pt.tmp"
    torch.save(payload, tmp)
    tmp.replace(model_path)
    return MemberResult(seed, model_path, len(train_pos), len(val_pos),
                        float(best_score) if best_score is not None else None,
                        int(store.targets[train_pos].sum()))


def train_ensemble(store_path: Path | str, run_dir: Path | str, cfg: TrainConfig,
                   progress: bool = False, console: Any = None,
                   dataset: Path | str | None = None) -> list[MemberResult]:
    """Train ``cfg.seeds`` members (seeds ``cfg.seed .. cfg.seed + seeds - 1``).

    Args:
        store_path: the patch store folder.
        run_dir: the run folder (created; an existing member with a ``model.pt`` is kept).
        cfg: hyper-parameters and the pool's holdout and filters.
        progress: show Lightning's progress bar.
        console: a rich console for one line per member (optional).
        dataset: the dataset the store was cut from (default: the one the store records);
            the holdout and filters are resolved against its images table.

    Returns:
        One :class:`MemberResult` per member.
    """
    cfg.check()
    store = PatchStore(store_path)
    run = Path(run_dir)
    ds = Dataset.open(dataset or store.meta["dataset"])
    sel, notes = pool_selection(ds, cfg.pool_filters(), cfg.holdout)
    labels = np.asarray(store.index.column("label").to_pylist(), dtype=object)
    pool = pool_positions(ds, sel, store.image_keys, labels)
    if len(pool) == 0:
        raise DatasetError(f"{store.path}: no patches left in the training pool "
                           f"(holdout {list(sel.holdout)}, filters {cfg.pool_filters()})")
    if len(np.unique(store.targets[pool])) < 2:
        raise DatasetError(f"{store.path}: the training patches hold only one class "
                           f"({'mitotic figures' if store.targets[pool][0] else 'negatives'})")
    if cfg.pretrained is not None and not Path(cfg.pretrained).exists():
        raise FileNotFoundError(f"pretrained weights {cfg.pretrained} do not exist")
    _start_run(run, cfg, store, sel, notes, pool, console)
    image_keys = store.image_keys[pool]
    splits: dict[str, Any] = {"val_fraction": cfg.val_fraction, "selection": sel.describe(),
                              "holdout": [list(h) for h in sel.holdout], "notes": notes,
                              "n_pool_images": len(set(image_keys)), "members": []}
    results = []
    for k in range(cfg.seeds):
        seed = cfg.seed + k
        train_keys, val_keys = split_by_image(list(image_keys), cfg.val_fraction, seed)
        val_set = set(val_keys)
        is_val = np.fromiter((key in val_set for key in image_keys), bool, len(image_keys))
        train_pos, val_pos = pool[~is_val], pool[is_val]
        train_pos = subsample_mf(train_pos, store.targets, cfg.max_train_mf, seed)
        splits["members"].append({
            "seed": seed, "dir": f"seed-{seed}", "train_images": train_keys,
            "val_images": val_keys, "n_train_patches": len(train_pos),
            "n_val_patches": len(val_pos),
            "n_train_positive": int(store.targets[train_pos].sum()),
            "n_val_positive": int(store.targets[val_pos].sum())})
        atomic_write_json(run / "splits.json", splits)
        member_dir = run / f"seed-{seed}"
        if (member_dir / "model.pt").exists():
            meta = torch.load(member_dir / "model.pt", map_location="cpu", weights_only=False)
            results.append(MemberResult(seed, member_dir / "model.pt", len(train_pos),
                                        len(val_pos), meta.get("best_val_loss"),
                                        int(store.targets[train_pos].sum())))
            continue
        res = train_member(store, cfg, seed, train_pos, val_pos, member_dir, progress)
        results.append(res)
        if console is not None:
            console.print(f"seed {seed}: {res.n_train} train / {res.n_val} val patches, "
                          f"best loss {res.best_val_loss}")
    _write_untouched(run, splits["members"])
    atomic_write_json(run / "ensemble.json", {
        "members": [str(r.model_path.relative_to(run)) for r in results],
        "patch": store.config.__dict__, "use_mask": cfg.use_mask})
    return results


def _start_run(run: Path, cfg: TrainConfig, store: PatchStore, sel: Selection, notes: list[str],
               pool: np.ndarray, console: Any) -> None:
    """Create ``run`` and write its ``config.json``; print the notes and the pool summary.

    Raises:
        UsageError: ``run`` already holds a run with other training settings or store.
    """
    run.mkdir(parents=True, exist_ok=True)
    config = {"train": asdict(cfg), "patch_store": str(store.path.resolve()),
              "patch": store.config.__dict__, "store_meta": store.meta,
              "selection": sel.describe(), "versions": _versions()}
    cfg_path = run / "config.json"
    if cfg_path.exists():
        old = json.loads(cfg_path.read_text())
        if old.get("train") != config["train"] or old.get("patch_store") != config["patch_store"]:
            raise UsageError(f"{run}: holds a run with other settings; choose a new --out")
    atomic_write_json(cfg_path, config)
    if console is not None:
        for note in notes:
            console.print(f"note: {note}", markup=False)
        console.print(f"training pool: {len(pool)} patches on "
                      f"{len(set(store.image_keys[pool]))} images; held out "
                      f"{', '.join(f'{a}:{b}' for a, b in sel.holdout) or 'nothing'}",
                      markup=False)


def subsample_mf(train_pos: np.ndarray, targets: np.ndarray, max_mf: int | None,
                 seed: int) -> np.ndarray:
    """Keep at most ``max_mf`` mitotic-figure patches of ``train_pos`` (all negatives).

    The kept figures are ``default_rng(seed).choice`` of the figure positions, without
    replacement, so a member's subset depends only on the pool and its seed.
    """
    if max_mf is None:
        return train_pos
    mf = train_pos[targets[train_pos] == 1]
    if len(mf) <= max_mf:
        return train_pos
    keep = np.random.default_rng(seed).choice(mf, size=max_mf, replace=False)
    return np.sort(np.concatenate([train_pos[targets[train_pos] == 0], keep]))


def _write_untouched(run: Path, members: list[dict[str, Any]]) -> None:
    """``RUN/val_images.txt``: validation images no member trained on."""
    trained = set().union(*(m["train_images"] for m in members))
    common = set.intersection(*(set(m["val_images"]) for m in members)) - trained
    text = ("# validation images no member of this run trained on (threshold tuning)\n"
            + "".join(f"{k}\n" for k in sorted(common)))
    atomic_write_bytes(run / "val_images.txt", text.encode())


def _versions() -> dict[str, str]:
    import torchvision

    from mfcurate import __version__

    return {"mfcurate": __version__, "torch": torch.__version__,
            "torchvision": torchvision.__version__, "lightning": L.__version__,
            "numpy": np.__version__}


def num_steps(n: int, batch: int) -> int:
    """Optimizer steps per epoch for ``n`` patches."""
    return math.ceil(n / batch)
