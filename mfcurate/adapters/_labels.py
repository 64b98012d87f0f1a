"""Mapping of the sources' class names onto the mfcurate vocabulary (case-insensitive)."""

from __future__ import annotations

from mfcurate.schemas.vocab import Label

_NAME_TO_LABEL: dict[str, Label] = {
    "mitotic figure": Label.MITOTIC_FIGURE,
    "mitotic figures": Label.MITOTIC_FIGURE,
    "mitosis": Label.MITOTIC_FIGURE,
    "mitose": Label.MITOTIC_FIGURE,  # TUPAC16 alternative labels (German)
    "mitotic": Label.MITOTIC_FIGURE,
    "mf": Label.MITOTIC_FIGURE,
    "not mitotic figure": Label.MITOTIC_LIKE,
    "non-mitotic figure": Label.MITOTIC_LIKE,
    "hard negative": Label.MITOTIC_LIKE,
    "nonmitosis": Label.MITOTIC_LIKE,
    "non-mitosis": Label.MITOTIC_LIKE,
    "non mitosis": Label.MITOTIC_LIKE,
    "not mitosis": Label.MITOTIC_LIKE,
    "mitotic figure look-alike": Label.MITOTIC_LIKE,
    "mitotic figure look alike": Label.MITOTIC_LIKE,
    "mitotic cell lookalike": Label.MITOTIC_LIKE,
    "mitotic-figure look-alike": Label.MITOTIC_LIKE,
    "mitotic figure lookalike": Label.MITOTIC_LIKE,
    "mitotic cell look-alike": Label.MITOTIC_LIKE,
    "mitotic-like figure": Label.MITOTIC_LIKE,
    "mitotic like figure": Label.MITOTIC_LIKE,
    "mitotic_like": Label.MITOTIC_LIKE,
    "imposter": Label.MITOTIC_LIKE,
    "look-alike": Label.MITOTIC_LIKE,
    "granulocyte": Label.GRANULOCYTE,
    "granulocytes": Label.GRANULOCYTE,
    "tumor cell": Label.TUMOUR_CELL,
    "tumour cell": Label.TUMOUR_CELL,
    "tumor cells": Label.TUMOUR_CELL,
    "neoplastic tumour cell": Label.TUMOUR_CELL,
    "nonmitotic tumor cell": Label.TUMOUR_CELL,
    "non-mitotic tumor cell": Label.TUMOUR_CELL,
    "eosinophilic granulocyte": Label.GRANULOCYTE,
    "neoplastic cell": Label.TUMOUR_CELL,
    "neoplastic tumor cell": Label.TUMOUR_CELL,
    "background": Label.BACKGROUND,
    "background object": Label.BACKGROUND,
    "other cell": Label.OTHER_CELL,
    "nucleus": Label.OTHER_CELL,
}


#: Class names of regions (tumour zones, ROIs, exclusions): never cells, even as spots.
_REGION_NAMES: frozenset[str] = frozenset({
    "tumorzone", "tumour zone", "tumor zone", "nekrosezone", "necrosis",
    "unscharfe scan-area", "nicht tumorgewebe excludieren",  # CCMCT Tumorzone DB (German)
    "tumor region", "tumour region", "exclude from tumor region", "exclude from tumour region",
    "10hpf selection", "roi", "region of interest", "hotspot", "exclude", "tissue",
})


def _norm(name: str) -> str:
    return " ".join(name.strip().lower().replace("_", " ").split())


def is_region_name(name: str | None) -> bool:
    """True for a class name that denotes a region (ROI, tumour zone), never a cell.

    Examples:
        >>> is_region_name("Tumorzone"), is_region_name("10hpf selection")
        (True, True)
        >>> is_region_name("Mitotic figure")
        False
    """
    return name is not None and _norm(name) in _REGION_NAMES


def label_for_name(name: str | None) -> Label | None:
    """Vocabulary label of a source class name, or None when the name is not a cell class.

    Examples:
        >>> label_for_name("Mitotic figure")
        <Label.MITOTIC_FIGURE: 'mitotic_figure'>
        >>> label_for_name("Hard negative").value
        'mitotic_like'
        >>> label_for_name("Tumorzone") is None
        True
    """
    if name is None:
        return None
    key = _norm(name)
    if key in _NAME_TO_LABEL:
        return _NAME_TO_LABEL[key]
    try:
        return Label(name.strip().lower())
    except ValueError:
        return None
