"""The counts table of a dataset in the OMG-Net Table 1 layout."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pyarrow.compute as pc

from mfcurate.dataset import Dataset
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


def counts_table(ds: Dataset) -> list[CountRow]:
    """Images, MF, mitotic-like and other objects per source and tumour type (streamed)."""
    images = ds.images(columns=["image_key", "source", "tumour_type"])
    tumour_of = dict(zip(images.column("image_key").to_pylist(),
                         (t or "unknown" for t in images.column("tumour_type").to_pylist()),
                         strict=True))
    n_images: dict[tuple[str, str], int] = defaultdict(int)
    for src, key in zip(images.column("source").to_pylist(),
                        images.column("image_key").to_pylist(), strict=True):
        n_images[(src, tumour_of[key])] += 1
    objs: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for batch in ds.iter_objects(columns=["image_key", "source", "label", "qa_state"]):
        batch = batch.filter(pc.not_equal(batch.column("qa_state"), "rejected"))
        for src, key, lab in zip(batch.column("source").to_pylist(),
                                 batch.column("image_key").to_pylist(),
                                 batch.column("label").to_pylist(), strict=True):
            objs[(src, tumour_of.get(key, "unknown"))][lab] += 1
    rows = []
    for k in sorted(set(n_images) | set(objs)):
        c = objs.get(k, {})
        mf = c.get(Label.MITOTIC_FIGURE.value, 0)
        ml = c.get(Label.MITOTIC_LIKE.value, 0)
        rows.append(CountRow(k[0], k[1], n_images.get(k, 0), mf, ml, sum(c.values()) - mf - ml))
    return rows
