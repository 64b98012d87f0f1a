"""The counts table of a dataset in the OMG-Net Table 1 layout."""

from __future__ import annotations

from dataclasses import dataclass

from mfcurate.dataset import Dataset, Selection, summarize
from mfcurate.schemas.vocab import Label


@dataclass
class CountRow:
    """One row of the counts table (per source and tumour type)."""

    source: str
    tumour_type: str
    images: int
    mitotic_figure: int
    mitotic_like: int
    other: int


def counts_table(ds: Dataset, sel: Selection | None = None) -> list[CountRow]:
    """Images, MF, mitotic-like and other objects per source and tumour type.

    Counts the selection (default :class:`Selection()`: rejected objects and images that
    copy another source's image are left out), through :func:`summarize` like every
    other count of the project.
    """
    s = summarize(ds, sel or Selection(), by=("source", "tumour_type"))
    rows = []
    for group, c in s["groups"].items():
        src, tumour = group.split(" | ", 1)
        by_label = c["by_label"]
        mf = by_label.get(Label.MITOTIC_FIGURE.value, 0)
        ml = by_label.get(Label.MITOTIC_LIKE.value, 0)
        rows.append(CountRow(src, "unknown" if tumour == "None" else tumour, c["images"], mf,
                             ml, sum(by_label.values()) - mf - ml))
    return sorted(rows, key=lambda r: (r.source, r.tumour_type))
