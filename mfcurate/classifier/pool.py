"""Which images a classifier trains on, and which it never saw (the paper's partitions).

The paper trains on every image except the MIDOG++ test images: CCMCT's and CMC's test WSIs
and ICPR's test HPFs are training data there.  So the training pool is a
:class:`~mfcurate.dataset.Selection` with ``holdout=(("midog++", "test"),)`` by default, not
"every split but test"; a holdout also removes every copy of a held-out image in another
source (MIDOG 2021 inside MIDOG++).

A run records, per member, the images it trained on and the validation images it set aside
(``RUN/splits.json``).  :class:`RunSplits` reads that record so that threshold tuning can
check that it never tunes on an image any member trained on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mfcurate.dataset import Dataset, Selection, parse_holdout, select_images
from mfcurate.errors import DatasetError, UsageError

#: The paper's holdout: MIDOG++'s 111 test images (and their copies elsewhere).
DEFAULT_HOLDOUT = ("midog++:test",)

#: Selection fields a training pool may be filtered by (CLI ``--source`` ...).
POOL_FILTERS = ("sources", "species", "tumour_types", "labels", "splits", "image_keys")


def holdout_pairs(ds: Dataset, holdout: Sequence[str] | None) -> tuple[
        tuple[tuple[str, str], ...], list[str]]:
    """``SOURCE:SPLIT`` strings as pairs, with notes.

    ``None`` means the default (:data:`DEFAULT_HOLDOUT`), applied only to sources the dataset
    holds (a note says so otherwise); an explicit entry naming an absent source is a usage
    error; ``["none"]`` holds nothing out.
    """
    notes: list[str] = []
    if holdout is not None and [h.lower() for h in holdout] == ["none"]:
        return (), ["nothing held out (--holdout none)"]
    given = list(DEFAULT_HOLDOUT if holdout is None else holdout)
    pairs = []
    for h in given:
        src, split = parse_holdout(h)
        if src not in ds.sources:
            if holdout is None:
                notes.append(f"default holdout {h}: {ds.root} holds no {src}, nothing held "
                             "out for it")
                continue
            raise UsageError(f"--holdout {h}: {ds.root} holds no source {src!r} "
                             f"(has {', '.join(ds.sources) or 'none'})")
        pairs.append((src, split))
    return tuple(pairs), notes


def pool_selection(ds: Dataset, filters: dict[str, Any] | None = None,
                   holdout: Sequence[str] | None = None) -> tuple[Selection, list[str]]:
    """The Selection of a training pool: ``filters`` (POOL_FILTERS keys) minus the holdout."""
    filters = {k: v for k, v in (filters or {}).items() if v}
    bad = sorted(set(filters) - set(POOL_FILTERS))
    if bad:
        raise UsageError(f"unknown pool filter(s) {', '.join(bad)}")
    pairs, notes = holdout_pairs(ds, holdout)
    sel = Selection.from_options(**filters, holdout=[f"{s}:{p}" for s, p in pairs])
    return sel.check(ds), notes


def pool_positions(ds: Dataset, sel: Selection, image_keys: np.ndarray,
                   labels: np.ndarray) -> np.ndarray:
    """Positions of patches (their ``image_keys`` / ``labels`` arrays) a selection keeps."""
    keep_images = set(select_images(ds, sel, columns=["image_key"])
                      .column("image_key").to_pylist())
    keep = np.fromiter((k in keep_images for k in image_keys), bool, len(image_keys))
    if sel.labels:
        keep &= np.isin(labels.astype(str), list(sel.labels))
    return np.flatnonzero(keep)


@dataclass(frozen=True)
class Member:
    """One ensemble member's partition (from ``splits.json``)."""

    seed: int
    dir: str
    train_images: frozenset[str]
    val_images: frozenset[str]


@dataclass(frozen=True)
class RunSplits:
    """The partitions of a training run (``RUN/splits.json``)."""

    run: Path
    members: tuple[Member, ...]
    holdout: tuple[tuple[str, str], ...] = ()

    @classmethod
    def load(cls, run: Path | str) -> RunSplits:
        """Read ``RUN/splits.json`` (raises :class:`DatasetError` when absent or bad)."""
        p = Path(run) / "splits.json"
        try:
            data = json.loads(p.read_text())
            members = tuple(Member(int(m["seed"]), str(m.get("dir", f"seed-{m['seed']}")),
                                   frozenset(m["train_images"]), frozenset(m["val_images"]))
                            for m in data["members"])
        except FileNotFoundError:
            raise DatasetError(f"{p}: no splits record; is {run} a train-classifier run?"
                               ) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{p}: not a train-classifier splits record ({exc})") from None
        hold = tuple(tuple(h) for h in data.get("holdout", []))
        return cls(Path(run), members, hold)

    @property
    def trained_images(self) -> frozenset[str]:
        """Images any member trained on (the union of the members' training sides)."""
        return frozenset().union(*(m.train_images for m in self.members))

    @property
    def untouched_val_images(self) -> frozenset[str]:
        """Validation images no member trained on (what the ensemble may be tuned on)."""
        if not self.members:
            return frozenset()
        common = frozenset.intersection(*(m.val_images for m in self.members))
        return common - self.trained_images

    def member_for(self, model_path: Path | str) -> Member | None:
        """The member whose folder holds ``model_path`` (None if none)."""
        parent = Path(model_path).resolve().parent
        for m in self.members:
            if (self.run / m.dir).resolve() == parent:
                return m
        return None

    def check_tuning(self, images: Iterable[str], members: Sequence[Member] | None = None
                     ) -> None:
        """Raise :class:`UsageError` if ``images`` include one ``members`` trained on."""
        trained = frozenset().union(*(m.train_images for m in (members or self.members)))
        bad = sorted(set(images) & trained)
        if bad:
            raise UsageError(f"refusing to tune the threshold on {len(bad)} image(s) a member "
                             f"of {self.run} trained on, e.g. {bad[0]}; tune on a held-out "
                             "split or give --threshold")


def find_run(models: Sequence[str | Path]) -> Path | None:
    """The run folder of model files (``RUN/seed-*/model.pt`` with ``RUN/splits.json``)."""
    runs = {Path(m).resolve().parent.parent for m in models}
    if len(runs) == 1:
        run = next(iter(runs))
        if (run / "splits.json").exists():
            return run
    return None
