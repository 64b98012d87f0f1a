"""Selection options shared by the commands that choose images (one spelling everywhere).

Every option maps onto a :class:`mfcurate.dataset.Selection` field through
:func:`selection_options`, so ``--source``, ``--species``, ``--tumour``, ``--label``,
``--images`` and ``--holdout`` mean the same in ``build-patches``, ``train-classifier``,
``detect --dataset`` and ``score``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

SourceOpt = Annotated[list[str] | None, typer.Option(
    "--source", help="Only images of this source (repeatable).")]
SpeciesOpt = Annotated[list[str] | None, typer.Option(
    "--species", help="Only images of this species: human, canine, ... (repeatable).")]
TumourOpt = Annotated[list[str] | None, typer.Option(
    "--tumour", help="Only images of this tumour type, as in `mfcurate info` (repeatable).")]
LabelOpt = Annotated[list[str] | None, typer.Option(
    "--label", help="Only objects with this label (repeatable).")]
ImagesOpt = Annotated[list[Path] | None, typer.Option(
    "--images", help="Only the image keys listed in this file (one per line; repeatable).")]
HoldoutOpt = Annotated[list[str] | None, typer.Option(
    "--holdout", help="SOURCE:SPLIT whose images (and their copies in other sources) are "
                      "left out (repeatable; default midog++:test when the dataset holds "
                      "midog++; --holdout none holds nothing out).")]


def image_keys_from(files: list[Path] | None) -> list[str] | None:
    """Union of the image keys of ``--images`` files (None when none given)."""
    if not files:
        return None
    from mfcurate.dataset import read_image_list

    keys: set[str] = set()
    for f in files:
        keys |= read_image_list(f)
    return sorted(keys)


def selection_options(*, source: list[str] | None = None, species: list[str] | None = None,
                      tumour: list[str] | None = None, label: list[str] | None = None,
                      images: list[Path] | None = None, split: list[str] | None = None,
                      ) -> dict[str, Any]:
    """CLI values as :meth:`Selection.from_options` keywords (unset ones left out)."""
    out: dict[str, Any] = {"sources": source, "species": species, "tumour_types": tumour,
                           "labels": label, "image_keys": image_keys_from(images),
                           "splits": split}
    return {k: v for k, v in out.items() if v}
