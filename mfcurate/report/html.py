"""``mfcurate report DATASET``: one self-contained HTML page about a dataset.

Sections: counts per source and tumour type (OMG-Net Table 1 layout), species and scanner
mix, object sizes in µm², mask origin and QA state, and example overlays of mitotic figures,
mitotic-like figures and background nuclei per source (mask outlines on crops read from the
images).  Plots are PNG embedded as ``data:`` URIs, so the file can be mailed or archived.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mfcurate import __version__
from mfcurate.dataset import Dataset, Selection, atomic_write_bytes, iter_selected
from mfcurate.report.figures import LABEL_COLOURS, area_histograms, example_grid, stacked_bars
from mfcurate.report.stats import DatasetStats, dataset_stats

EXAMPLE_LABELS = ("mitotic_figure", "mitotic_like", "background")

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px;margin:0.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3} td:first-child,td:nth-child(2){text-align:left}
img{max-width:100%;margin:0.3em 0} .meta{color:#666;font-size:13px}
"""


def _img(png: bytes, alt: str) -> str:
    return (f'<img alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{base64.b64encode(png).decode()}">')


def _table(df: pd.DataFrame, index: bool = False) -> str:
    return str(df.to_html(index=index, border=0, escape=True))


def _examples(ds: Dataset, stats: DatasetStats, source: str, per_label: int, crop_px: int,
              rng: np.random.Generator) -> list[tuple[str, list[Any]]]:
    from mfcurate.export.crops import crop_box, mask_in_crop
    from mfcurate.io.reader import open_image

    obj = stats.objects[stats.objects["source"] == source]
    rows: list[tuple[str, list[Any]]] = []
    keys: dict[str, str] = {}
    for label in EXAMPLE_LABELS:
        sub = obj[obj["label"] == label]
        if sub.empty:
            continue
        pick = sub.iloc[rng.permutation(len(sub))[:per_label]]
        for k in pick["object_key"]:
            keys[str(k)] = label
    if not keys:
        return rows
    import pyarrow as pa
    import pyarrow.compute as pc

    want = pa.array(sorted(keys))
    found: dict[str, dict[str, Any]] = {}
    cols = ["object_key", "image_key", "centroid_xy", "bbox_xyxy", "mask_rle"]
    for t in iter_selected(ds, Selection(sources=(source,)), columns=cols):
        t = t.filter(pc.is_in(t.column("object_key"), value_set=want))
        for r in t.to_pylist():
            found[r["object_key"]] = r
    images = {r["image_key"]: r for r in ds.images(sources=[source]).to_pylist()}
    by_label: dict[str, list[Any]] = {lab: [] for lab in EXAMPLE_LABELS}
    for key, label in keys.items():
        r = found.get(key)
        if r is None:
            continue
        x0, y0 = crop_box(tuple(r["centroid_xy"]), crop_px)
        path = ds.image_path(images[r["image_key"]])
        if not path.exists():
            rgb = np.full((crop_px, crop_px, 3), 235, np.uint8)
        else:
            with open_image(path) as img:
                rgb = img.read_region(x0, y0, crop_px, crop_px)
        mask = mask_in_crop(r["mask_rle"], r["bbox_xyxy"], x0, y0, crop_px) \
            if r["mask_rle"] else None
        by_label[label].append((rgb, mask, "/".join(key.split("/")[-2:])))
    return [(lab, items) for lab, items in by_label.items() if items]


def _label_rounds(ds: Dataset, parts: list[str]) -> int:
    """The label-round section (agreement table and figure per round); figures added."""
    from mfcurate.labelround.plots import agreement_png
    from mfcurate.labelround.summary import ROW_COLUMNS, agreement_rows, dataset_agreement

    result = dataset_agreement(ds)
    if not result:
        return 0
    parts += ["<h2>Label rounds</h2>", "<p>Votes of the label rounds: Fleiss' κ over the "
              "raters, the mean of Cohen's κ over rater pairs, the share of equivocal objects "
              "(votes not all the same certain vote) and unresolved ones (label uncertain), "
              "overall and per tumour type.</p>",
              _table(pd.DataFrame(agreement_rows(result), columns=list(ROW_COLUMNS)))]
    for rid, g in result.items():
        parts.append(_img(agreement_png(g["overall"], f"label round {rid}"),
                          f"agreement {rid}"))
    return len(result)


def build_report(dataset: Dataset | Path | str, out_html: Path | str, *,
                 examples_per_label: int = 4, crop_px: int = 96, seed: int = 0,
                 title: str | None = None) -> dict[str, Any]:
    """Write the HTML report.

    Args:
        dataset: a :class:`Dataset` or its folder.
        out_html: output file (written atomically).
        examples_per_label: example crops per label and source.
        crop_px: side of the example crops in level-0 px.
        seed: picks the examples reproducibly.
        title: page title (default: the dataset folder name).

    Returns:
        ``{"report": path, "bytes": n, "images": n, "objects": n, "figures": n}``.
    """
    ds = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
    stats = dataset_stats(ds)
    s = stats.summary()
    rng = np.random.default_rng(seed)
    name = title or ds.root.resolve().name
    figs = 0
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(name)}"
             f"</title><style>{_CSS}</style></head><body>",
             f"<h1>Dataset report: {html.escape(name)}</h1>",
             f"<p class='meta'>{s['images']} images, {s['objects']} objects, "
             f"{len(stats.sources)} sources. Generated by mfcurate {__version__} on "
             f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC from {html.escape(str(ds.root))}."
             f"</p>"]
    src_rows = [{"source": k, "name": v.get("name", k), "licence": v.get("license", ""),
                 "DOI": v.get("doi", ""), "images": s["by_source"].get(k, {}).get("images", 0),
                 "objects": s["by_source"].get(k, {}).get("objects", 0)}
                for k, v in sorted(stats.sources.items())]
    parts += ["<h2>Sources</h2>", _table(pd.DataFrame(src_rows))]
    parts += ["<h2>Counts per source and tumour type</h2>",
              "<p>The layout of OMG-Net's Table 1: images, mitotic figures, mitotic-like "
              "figures and background nuclei.</p>", _table(stats.table1())]
    if not stats.objects.empty:
        by_label = stats.counts("label")
        parts += ["<h2>Objects per source and label</h2>",
                  _img(stacked_bars(by_label, "Objects per source", "objects", LABEL_COLOURS),
                       "objects per source and label")]
        figs += 1
    if not stats.images.empty:
        parts.append("<h2>Species and scanners</h2>")
        for col in ("species", "scanner"):
            t = stats.counts(col, frame="images")
            parts += [_img(stacked_bars(t, f"Images per source by {col}", "images"),
                           f"{col} mix"), _table(t, index=True)]
            figs += 1
    if not stats.objects.empty:
        q = pd.DataFrame([{"label": k, **v} for k, v in sorted(stats.area_quantiles().items())])
        parts += ["<h2>Object size (µm²)</h2>", _img(area_histograms(stats), "areas")]
        if not q.empty:
            parts.append(_table(q.round(2)))
        figs += 1
        parts.append("<h2>Mask origin and QA state</h2>")
        for col, what in (("mask_origin", "Mask origin"), ("qa_state", "QA state")):
            t = stats.counts(col)
            parts += [_img(stacked_bars(t, f"{what} per source", "objects"), what),
                      _table(t, index=True)]
            figs += 1
        parts.append("<h2>Examples</h2><p>Crops centred on objects with the mask outline "
                     "(red: mitotic figure, blue: mitotic-like, grey: background).</p>")
        for src in sorted(stats.sources):
            ex = _examples(ds, stats, src, examples_per_label, crop_px, rng)
            if ex:
                parts.append(_img(example_grid(ex, src), f"examples {src}"))
                figs += 1
    figs += _label_rounds(ds, parts)
    parts.append("</body></html>")
    data = "\n".join(parts).encode()
    out = Path(out_html)
    atomic_write_bytes(out, data)
    return {"report": str(out), "bytes": len(data), "images": s["images"],
            "objects": s["objects"], "figures": figs}
