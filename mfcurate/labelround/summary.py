"""Agreement of every label round a dataset holds (for ``mfcurate info`` and the report).

Read from the dataset alone (the ``labels`` layers of its sources), so it needs no round
folder: the votes of each round (``votes[].round``), the consensus label the round wrote
(``step_info.rounds``) and the objects' tumour types.  Datasets without a ``labels`` part
cost nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mfcurate.dataset import Dataset
from mfcurate.labelround.agreement import grouped_agreement

#: Columns of :func:`agreement_rows`.
ROW_COLUMNS = ("round", "tumour type", "objects", "raters", "Fleiss κ", "mean Cohen κ",
               "equivocal", "unresolved")


def dataset_agreement(ds: Dataset) -> dict[str, dict[str, Any]]:
    """``round id -> {"overall", "by_tumour_type"}`` (see :func:`grouped_agreement`)."""
    votes: dict[str, dict[str, dict[str, str]]] = {}
    labels: dict[str, dict[str, str]] = {}
    groups: dict[str, str] = {}
    for src in ds.sources:
        if "labels" not in ds.parts(src):
            continue
        layer = ds.layer(src, "labels")
        keys = layer.column("object_key").combine_chunks()
        for r in layer.select(["object_key", "label", "votes", "step_info"]).to_pylist():
            for v in r["votes"] or []:
                if v.get("round") and v.get("label"):
                    votes.setdefault(v["round"], {}).setdefault(
                        r["object_key"], {})[v["annotator"]] = v["label"]
            rounds = _loads(r["step_info"]).get("rounds") or {}
            for rid, info in rounds.items():
                if isinstance(info, dict) and info.get("label"):
                    labels.setdefault(str(rid), {})[r["object_key"]] = str(info["label"])
        tumour = {i["image_key"]: i["tumour_type"] for i in
                  ds.images(sources=[src], columns=["image_key", "tumour_type"]).to_pylist()}
        for t in ds.iter_objects(sources=[src], columns=["object_key", "image_key"]):
            t = t.filter(pc.is_in(t.column("object_key"), value_set=keys))
            for k, ik in zip(t.column("object_key").to_pylist(),
                             t.column("image_key").to_pylist(), strict=True):
                groups[k] = tumour.get(ik) or "unknown"
    return {rid: grouped_agreement(v, groups, None, labels.get(rid) or None)
            for rid, v in sorted(votes.items())}


def _loads(s: str | None) -> dict[str, Any]:
    try:
        v = json.loads(s) if s else {}
    except json.JSONDecodeError:
        return {}
    return v if isinstance(v, dict) else {}


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.1f} %" if pct else f"{v:.2f}"


def agreement_rows(result: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Table rows (``ROW_COLUMNS``): per round the overall line, then one per tumour type."""
    rows = []
    for rid, g in result.items():
        for name, a in [("all", g["overall"]), *g["by_tumour_type"].items()]:
            rows.append([rid if name == "all" else "", name, str(a["objects"]),
                         str(len(a["raters"])), _fmt(a["fleiss_kappa"]),
                         _fmt(a["mean_cohen_kappa"]), _fmt(a["equivocal"], True),
                         _fmt(a.get("unresolved"), True)])
    return rows


def agreement_table(result: dict[str, dict[str, Any]]) -> pa.Table:
    """The rows of :func:`agreement_rows` as a string table."""
    rows = agreement_rows(result)
    return pa.table({c: [r[i] for r in rows] for i, c in enumerate(ROW_COLUMNS)})
