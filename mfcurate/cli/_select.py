"""The selection options every reading command shares (``--source``, ``--split``, ...).

One definition of each flag, so ``--tumour`` or ``--holdout`` mean the same in ``export``,
``info``, ``publish``, ``build-patches``, ``train-classifier``, ``score`` and ``detect``;
:func:`selection` turns the values into a :class:`~mfcurate.dataset.Selection`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from mfcurate.dataset import Selection

Many = list[str] | None

SourceOpt = Annotated[Many, typer.Option("--source", help="Only this source (repeatable).")]
SplitOpt = Annotated[Many, typer.Option("--split", help="Only this split (repeatable).")]
SpeciesOpt = Annotated[Many, typer.Option("--species",
                                          help="Only this species, e.g. human (repeatable).")]
TumourOpt = Annotated[Many, typer.Option("--tumour", help="Only this tumour type, as the "
                                                          "images table names it (repeatable).")]
LabelOpt = Annotated[Many, typer.Option("--label", help="Only this label (repeatable).")]
QAStateOpt = Annotated[Many, typer.Option("--qa-state",
                                          help="Only objects in this QA state (repeatable).")]
ImagesOpt = Annotated[list[Path] | None, typer.Option(
    "--images", help="Only the image keys listed in this file (one per line; repeatable).")]
HoldoutOpt = Annotated[Many, typer.Option(
    "--holdout", help="SOURCE:SPLIT whose images (and their copies in other sources) are "
                      "left out (repeatable; where a command has a default, e.g. midog++:test "
                      "for training, --holdout none holds nothing out).")]
IncludeRejectedOpt = Annotated[bool, typer.Option(
    "--include-rejected", help="Keep objects in QA state rejected (left out by default).")]


def image_keys_from(files: list[Path] | None) -> list[str] | None:
    """Union of the image keys of ``--images`` files (None when none given)."""
    if not files:
        return None
    from mfcurate.dataset import read_image_list

    keys: set[str] = set()
    for f in files:
        keys |= read_image_list(f)
    return sorted(keys)


def selection_options(*, source: Many = None, species: Many = None, tumour: Many = None,
                      label: Many = None, images: list[Path] | None = None,
                      split: Many = None) -> dict[str, Any]:
    """CLI values as :meth:`Selection.from_options` keywords (unset ones left out)."""
    out: dict[str, Any] = {"sources": source, "species": species, "tumour_types": tumour,
                           "labels": label, "image_keys": image_keys_from(images),
                           "splits": split}
    return {k: v for k, v in out.items() if v}


def selection(*, source: Many = None, split: Many = None, species: Many = None,
              tumour: Many = None, label: Many = None, qa_state: Many = None,
              images: list[Path] | None = None, holdout: Many = None,
              include_rejected: bool = False, masked_only: bool = False) -> Selection:
    """The :class:`Selection` of the shared CLI flags (image lists are read and merged)."""
    from mfcurate.dataset import Selection

    return Selection.from_options(
        **selection_options(source=source, species=species, tumour=tumour, label=label,
                            images=images, split=split),
        qa_states=qa_state, holdout=holdout, include_rejected=include_rejected,
        masked_only=masked_only)
