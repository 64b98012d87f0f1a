"""The three classes a rater chooses from, their QuPath names and colours, and their votes.

A label round asks one question per object: mitotic figure, not a mitotic figure, or
uncertain.  In QuPath the classes are ``Mitotic figure``, ``Not mitotic figure`` and
``Uncertain``; a vote is stored with a vocabulary label (``mitotic_figure``,
``mitotic_like``, ``uncertain``), ``mitotic_like`` being the vocabulary's class of every
"not mitotic figure" (imposter) judgement.

Colours follow QuPath's conventions as QuPath writes them: since QuPath 0.4 a
classification is ``{"name": ..., "color": [r, g, b]}`` (0-255 each); QuPath 0.2/0.3 wrote
``{"name": ..., "colorRGB": <packed signed 32-bit ARGB int>}``.  Both are read.
"""

from __future__ import annotations

from typing import Any

from mfcurate.schemas.vocab import Label

#: QuPath class name -> vote label.
CLASS_NAMES: dict[str, str] = {
    "Mitotic figure": Label.MITOTIC_FIGURE.value,
    "Not mitotic figure": Label.MITOTIC_LIKE.value,
    "Uncertain": Label.UNCERTAIN.value,
}
#: Vote label -> QuPath class name.
CLASS_OF_VOTE: dict[str, str] = {v: k for k, v in CLASS_NAMES.items()}
#: QuPath colours (RGB) of the three classes.
CLASS_COLORS: dict[str, tuple[int, int, int]] = {
    "Mitotic figure": (220, 20, 60),
    "Not mitotic figure": (70, 130, 180),
    "Uncertain": (255, 200, 0),
}
#: The vote labels in display order (rows/columns of agreement tables).
VOTE_LABELS: tuple[str, ...] = tuple(CLASS_NAMES.values())
#: Short display names of the vote labels.
SHORT: dict[str, str] = {Label.MITOTIC_FIGURE.value: "MF", Label.MITOTIC_LIKE.value: "not MF",
                         Label.UNCERTAIN.value: "uncertain"}

_ALIASES: dict[str, str] = {
    "mitotic figure": Label.MITOTIC_FIGURE.value, "mitotic_figure": Label.MITOTIC_FIGURE.value,
    "mf": Label.MITOTIC_FIGURE.value, "mitosis": Label.MITOTIC_FIGURE.value,
    "yes": Label.MITOTIC_FIGURE.value, "1": Label.MITOTIC_FIGURE.value,
    "not mitotic figure": Label.MITOTIC_LIKE.value, "not_mitotic_figure": Label.MITOTIC_LIKE.value,
    "not mf": Label.MITOTIC_LIKE.value, "non-mitotic": Label.MITOTIC_LIKE.value,
    "mitotic_like": Label.MITOTIC_LIKE.value, "no": Label.MITOTIC_LIKE.value,
    "0": Label.MITOTIC_LIKE.value,
    "uncertain": Label.UNCERTAIN.value, "?": Label.UNCERTAIN.value,
    "unsure": Label.UNCERTAIN.value,
}


class UnknownClass(ValueError):
    """A class name that is none of the round's classes."""


def vote_of(name: str | None) -> str | None:
    """The vote label of a class name (QuPath's or a sheet's); None for no class / empty.

    Matching ignores case and surrounding blanks; a few spellings are accepted besides the
    QuPath names (``MF``, ``not MF``, ``?``, ``yes``/``no``, ``1``/``0``).

    Raises:
        UnknownClass: any other name.
    """
    if name is None:
        return None
    key = " ".join(str(name).strip().lower().split())
    if key in ("", "unclassified", "none"):
        return None
    try:
        return _ALIASES[key]
    except KeyError:
        raise UnknownClass(f"class {name!r} is not one of "
                           f"{', '.join(repr(c) for c in CLASS_NAMES)}") from None


def class_name_of(classification: Any) -> str | None:
    """The class name of a QuPath ``classification`` property (dict, string or None).

    QuPath writes ``{"name": ...}`` for a class and ``{"names": [...]}`` for a derived
    class (``Tumor: Positive``); the latter is joined with ``": "`` as QuPath displays it.
    """
    if classification is None:
        return None
    if isinstance(classification, str):
        return classification
    if isinstance(classification, dict):
        if classification.get("name") is not None:
            return str(classification["name"])
        names = classification.get("names")
        if isinstance(names, list) and names:
            return ": ".join(str(n) for n in names)
    return None


def qupath_classification(class_name: str) -> dict[str, Any]:
    """A classification as QuPath 0.4+ writes it: ``{"name", "color": [r, g, b]}``."""
    return {"name": class_name, "color": list(CLASS_COLORS[class_name])}


def pack_rgb(rgb: tuple[int, int, int]) -> int:
    """QuPath 0.2/0.3 ``colorRGB``: opaque ARGB packed into a signed 32-bit int."""
    r, g, b = rgb
    v = (0xFF << 24) | (r << 16) | (g << 8) | b
    return v - (1 << 32) if v >= 1 << 31 else v


def unpack_rgb(value: int) -> tuple[int, int, int]:
    """RGB of a packed (signed or unsigned) QuPath ``colorRGB`` value."""
    v = int(value) & 0xFFFFFFFF
    return (v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF
