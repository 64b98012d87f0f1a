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
    "neoplastic cell": Label.TUMOUR_CELL,
    "neoplastic tumor cell": Label.TUMOUR_CELL,
    "background": Label.BACKGROUND,
    "background object": Label.BACKGROUND,
    "other cell": Label.OTHER_CELL,
    "nucleus": Label.OTHER_CELL,
}


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
    key = " ".join(name.strip().lower().replace("_", " ").split())
    if key in _NAME_TO_LABEL:
        return _NAME_TO_LABEL[key]
    try:
        return Label(name.strip().lower())
    except ValueError:
        return None
