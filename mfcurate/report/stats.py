"""Dataset statistics shared by the HTML report, the datasheet and the Zenodo description.

Only a few narrow columns of the objects table are read (streamed per batch), so the
statistics of millions of objects fit in memory easily.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from mfcurate.dataset import Dataset, Selection, iter_selected, select_images
from mfcurate.schemas.vocab import Label

OBJ_COLS = ["object_key", "image_key", "source", "label", "mask_origin", "qa_state",
             "area_um2", "area_px"]
IMG_COLS = ["image_key", "source", "tumour_type", "species", "scanner", "is_wsi", "split",
             "mpp_x"]

#: Column order of the OMG-Net Table 1 layout.
TABLE1_LABELS = (Label.MITOTIC_FIGURE.value, Label.MITOTIC_LIKE.value, Label.BACKGROUND.value)


@dataclass
class DatasetStats:
    """Counts and distributions of a dataset.

    Attributes:
        images: one row per image (``IMG_COLS``), pandas.
        objects: one row per object (``OBJ_COLS`` + tumour_type, species, scanner), pandas.
        sources: the manifest's source entries (name, citation, doi, license, homepage...).
    """

    images: pd.DataFrame
    objects: pd.DataFrame
    sources: dict[str, dict[str, Any]]

    def table1(self) -> pd.DataFrame:
        """OMG-Net Table 1: rows (source, tumour type); images, MF, mitotic-like, background.

        Returns:
            A frame with columns ``source, tumour_type, images, <labels...>, total`` and a
            final ``All`` row.
        """
        img = self.images.assign(tumour_type=self.images["tumour_type"].fillna("unspecified"))
        n_img = img.groupby(["source", "tumour_type"]).size().rename("images")
        obj = self.objects.assign(tumour_type=self.objects["tumour_type"].fillna("unspecified"))
        counts = (obj.groupby(["source", "tumour_type", "label"]).size()
                  .unstack("label", fill_value=0))
        for lab in TABLE1_LABELS:
            if lab not in counts.columns:
                counts[lab] = 0
        others = [c for c in counts.columns if c not in TABLE1_LABELS]
        counts = counts[list(TABLE1_LABELS) + sorted(others)]
        t = pd.concat([n_img, counts], axis=1).fillna(0).astype(int)
        t["total"] = t[[c for c in t.columns if c != "images"]].sum(axis=1)
        t = t.reset_index()
        total = t.drop(columns=["source", "tumour_type"]).sum()
        all_row = pd.DataFrame([{"source": "All", "tumour_type": "", **total.to_dict()}])
        return pd.concat([t, all_row], ignore_index=True)

    def counts(self, column: str, by: str = "source", frame: str = "objects") -> pd.DataFrame:
        """Cross-tabulate ``column`` by ``by`` (missing values shown as ``unknown``)."""
        df = self.objects if frame == "objects" else self.images
        if df.empty:
            return pd.DataFrame()
        return pd.crosstab(df[by].fillna("unknown"), df[column].fillna("unknown"))

    def area_quantiles(self) -> dict[str, dict[str, float]]:
        """Per label: n, median and 5/95 % quantiles of the mask area in µm²."""
        out: dict[str, dict[str, float]] = {}
        df = self.objects.dropna(subset=["area_um2"])
        for lab, g in df.groupby("label"):
            a = g["area_um2"].to_numpy()
            out[str(lab)] = {"n": int(a.size), "median": float(np.median(a)),
                             "p05": float(np.quantile(a, 0.05)),
                             "p95": float(np.quantile(a, 0.95))}
        return out

    def summary(self) -> dict[str, Any]:
        """JSON-able summary: totals, per source and label, mask origin, QA state."""
        obj = self.objects
        return {
            "images": len(self.images),
            "objects": len(obj),
            "by_label": {str(k): int(v) for k, v in obj["label"].value_counts().items()},
            "by_mask_origin": {str(k): int(v) for k, v in
                               obj["mask_origin"].fillna("none").value_counts().items()},
            "by_qa_state": {str(k): int(v) for k, v in obj["qa_state"].value_counts().items()},
            "tumour_types": sorted(str(t) for t in self.images["tumour_type"].dropna().unique()),
            "species": sorted(str(s) for s in self.images["species"].dropna().unique()),
            "scanners": sorted(str(s) for s in self.images["scanner"].dropna().unique()),
            "by_source": {
                src: {"images": int((self.images["source"] == src).sum()),
                      "objects": int((obj["source"] == src).sum()),
                      "by_label": {str(k): int(v) for k, v in
                                   obj.loc[obj["source"] == src, "label"].value_counts().items()}}
                for src in self.sources
            },
            "area_um2": self.area_quantiles(),
        }


def dataset_stats(ds: Dataset, sel: Selection | None = None) -> DatasetStats:
    """Statistics of a selection (default: every image, rejected objects left out).

    Reads the narrow columns of both tables and joins the image attributes onto objects.
    """
    sel = (sel or Selection()).check(ds)
    images = select_images(ds, sel, columns=IMG_COLS)
    batches = list(iter_selected(ds, sel, columns=OBJ_COLS, images=images))
    sources = {k: ds.source_info(k) for k in ds.sources}
    return stats_from_tables(images, batches, sources)


def stats_from_tables(images_table: pa.Table, object_batches: Sequence[pa.Table],
                      sources: Mapping[str, Mapping[str, Any]]) -> DatasetStats:
    """Statistics of given tables (e.g. the filtered tables of a publish package)."""
    images = images_table.select(IMG_COLS).to_pandas()
    batches = [b.select(OBJ_COLS) for b in object_batches if b.num_rows]
    if batches:
        objects = pa.concat_tables(batches).to_pandas()
    else:
        objects = pd.DataFrame({c: pd.Series(dtype="object") for c in OBJ_COLS})
    objects = objects.merge(images[["image_key", "tumour_type", "species", "scanner"]],
                            on="image_key", how="left")
    present = set(images["source"])
    return DatasetStats(images=images, objects=objects,
                        sources={k: dict(v) for k, v in sources.items() if k in present})
