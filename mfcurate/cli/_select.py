"""The selection options every reading command shares (``--source``, ``--split``, ...).

One definition of each flag, so ``--tumour`` or ``--holdout`` mean the same in ``export``,
``info``, ``publish``, ``build-patches``, ``train-classifier``, ``score`` and ``detect``;
:func:`selection` turns the values into a :class:`~mfcurate.dataset.Selection`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
    "--holdout", help="Leave out SOURCE:SPLIT and every copy of its images (repeatable).")]
IncludeRejectedOpt = Annotated[bool, typer.Option(
    "--include-rejected", help="Keep objects in QA state rejected (left out by default).")]


def selection(*, source: Many = None, split: Many = None, species: Many = None,
              tumour: Many = None, label: Many = None, qa_state: Many = None,
              images: list[Path] | None = None, holdout: Many = None,
              include_rejected: bool = False, masked_only: bool = False) -> Selection:
    """The :class:`Selection` of the shared CLI flags (image lists are read and merged)."""
    from mfcurate.dataset import Selection, read_image_list

    keys: set[str] = set()
    for path in images or ():
        keys |= read_image_list(path)
    return Selection.from_options(
        sources=source, splits=split, species=species, tumour_types=tumour, labels=label,
        qa_states=qa_state, image_keys=sorted(keys) if images else None, holdout=holdout,
        include_rejected=include_rejected, masked_only=masked_only)
