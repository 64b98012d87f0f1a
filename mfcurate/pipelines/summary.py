"""Count tables of a dataset: the OMG-Net Table 1 layout and the mask/QA summary."""

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


@dataclass
class MaskRow:
    """Mask coverage and QA states of one source."""

    source: str
    objects: int
    with_mask: int
    by_origin: dict[str, int]
    by_qa_state: dict[str, int]


def mask_summary(ds: Dataset) -> list[MaskRow]:
    """Per source: objects, objects with a mask, mask origins and QA states."""
    out = []
    for src in ds.sources:
        n = 0
        with_mask = 0
        origins: dict[str, int] = defaultdict(int)
        states: dict[str, int] = defaultdict(int)
        for batch in ds.iter_objects(sources=[src], columns=["mask_origin", "qa_state"]):
            n += batch.num_rows
            for o, s in zip(batch.column("mask_origin").to_pylist(),
                            batch.column("qa_state").to_pylist(), strict=True):
                if o is not None:
                    with_mask += 1
                    origins[o] += 1
                states[s] += 1
        out.append(MaskRow(src, n, with_mask, dict(origins), dict(states)))
    return out
