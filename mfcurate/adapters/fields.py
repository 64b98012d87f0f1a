"""Typed reading of source fields, one home for every adapter and reader.

Each helper checks one value where it is read (type, finiteness, range) and raises
:class:`~mfcurate.errors.SourceFormatError` naming the file, the record and the field::

    <path>: <where>: field <name>: <what is wrong>

``where`` is how the caller names the record (``line 3``, ``annotations[7]``, ``Slides row
uid=2``...).  Booleans are never numbers (JSON ``true`` is not ``1``); text is never a number
(SQLite stores ``'abc'`` in an INTEGER column as text); floats must be finite.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mfcurate.errors import SourceFormatError


@dataclass(frozen=True)
class Where:
    """A record of a file, for messages: ``Where(path, "annotations[3]")``.

    Attributes:
        path: the file.
        record: how the record is named in the message.
    """

    path: Path
    record: str

    def error(self, name: str, what: str) -> SourceFormatError:
        """The error of field ``name`` of this record."""
        prefix = f"{self.record}: " if self.record else ""
        return SourceFormatError(self.path, f"{prefix}field {name}: {what}")

    def sub(self, record: str) -> Where:
        """The same file, another record."""
        return Where(self.path, record)


def _show(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


def _type_name(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def number(v: Any, at: Where, name: str, *, lo: float | None = None, hi: float | None = None,
           positive: bool = False, optional: bool = False) -> float | None:
    """A finite real number (int or float, never bool or text) inside ``[lo, hi]``.

    Args:
        v: the value as read.
        at: file and record, for the message.
        name: field name, for the message.
        lo: smallest allowed value.
        hi: largest allowed value.
        positive: the value must be > 0.
        optional: None is allowed (and returned).

    Raises:
        SourceFormatError: wrong type, NaN/inf, or out of range.
    """
    if v is None:
        if optional:
            return None
        raise at.error(name, "missing (null)")
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise at.error(name, f"expected a number, got {_type_name(v)} {_show(v)}")
    f = float(v)
    if not math.isfinite(f):
        raise at.error(name, f"not a finite number ({_show(v)})")
    if positive and f <= 0:
        raise at.error(name, f"must be positive, got {_show(v)}")
    if lo is not None and f < lo:
        raise at.error(name, f"must be >= {lo:g}, got {_show(v)}")
    if hi is not None and f > hi:
        raise at.error(name, f"must be <= {hi:g}, got {_show(v)}")
    return f


def req_number(v: Any, at: Where, name: str, **kw: Any) -> float:
    """:func:`number` that never returns None."""
    out = number(v, at, name, **kw, optional=False)
    if out is None:  # pragma: no cover - number() raises instead
        raise at.error(name, "missing (null)")
    return out


def integer(v: Any, at: Where, name: str, *, lo: int | None = None, hi: int | None = None,
            optional: bool = False) -> int | None:
    """An integer (a float with an integral value is accepted, as SQLite REAL ids are).

    Raises:
        SourceFormatError: wrong type, not integral, or out of range.
    """
    if v is None:
        if optional:
            return None
        raise at.error(name, "missing (null)")
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise at.error(name, f"expected an integer, got {_type_name(v)} {_show(v)}")
    if isinstance(v, float) and not (math.isfinite(v) and v.is_integer()):
        raise at.error(name, f"expected an integer, got {_show(v)}")
    i = int(v)
    if lo is not None and i < lo:
        raise at.error(name, f"must be >= {lo}, got {i}")
    if hi is not None and i > hi:
        raise at.error(name, f"must be <= {hi}, got {i}")
    return i


def req_integer(v: Any, at: Where, name: str, **kw: Any) -> int:
    """:func:`integer` that never returns None."""
    out = integer(v, at, name, **kw, optional=False)
    if out is None:  # pragma: no cover - integer() raises instead
        raise at.error(name, "missing (null)")
    return out


def size_px(v: Any, at: Where, name: str) -> int | None:
    """An image width/height: a positive integer, or None when absent (null, 0 or missing)."""
    if v is None or (not isinstance(v, bool) and isinstance(v, int | float) and v == 0):
        return None
    return integer(v, at, name, lo=1)


def text(v: Any, at: Where, name: str, *, optional: bool = False,
         choices: Sequence[str] | None = None, nonempty: bool = False) -> str | None:
    """A string (never a number, list or object), optionally one of ``choices``.

    Raises:
        SourceFormatError: wrong type, empty when ``nonempty``, or not one of ``choices``.
    """
    if v is None:
        if optional:
            return None
        raise at.error(name, "missing (null)")
    if not isinstance(v, str):
        raise at.error(name, f"expected text, got {_type_name(v)} {_show(v)}")
    if nonempty and not v.strip():
        raise at.error(name, "is empty")
    if choices is not None and v not in choices:
        raise at.error(name, f"{_show(v)} is not one of {', '.join(choices)}")
    return v


def req_text(v: Any, at: Where, name: str, **kw: Any) -> str:
    """:func:`text` that never returns None."""
    out = text(v, at, name, **kw, optional=False)
    if out is None:  # pragma: no cover - text() raises instead
        raise at.error(name, "missing (null)")
    return out


def identifier(v: Any, at: Where, name: str) -> str:
    """An id that may be written as text or as an integer (``"pair1"``, ``7``)."""
    if isinstance(v, bool) or not isinstance(v, str | int):
        raise at.error(name, f"expected text or an integer id, got {_type_name(v)} {_show(v)}")
    s = str(v)
    if not s.strip():
        raise at.error(name, "is empty")
    return s


def mapping(v: Any, at: Where, name: str, *, optional: bool = False) -> Mapping[str, Any]:
    """A JSON object / TOML table (an empty one when absent and ``optional``)."""
    if v is None and optional:
        return {}
    if not isinstance(v, Mapping):
        raise at.error(name, f"expected an object, got {_type_name(v)} {_show(v)}")
    return v


def items(v: Any, at: Where, name: str, *, optional: bool = False) -> list[Any]:
    """A JSON list (an empty one when absent and ``optional``); a string is not a list."""
    if v is None and optional:
        return []
    if not isinstance(v, list | tuple):
        raise at.error(name, f"expected a list, got {_type_name(v)} {_show(v)}")
    return list(v)


def numbers(v: Any, at: Where, name: str, *, n: int | None = None, lo_n: int = 1,
            hi_n: int | None = None, positive: bool = False) -> list[float]:
    """A list of finite numbers, of length ``n`` (or ``lo_n..hi_n``)."""
    seq = items(v, at, name)
    if n is not None and len(seq) != n:
        raise at.error(name, f"expected {n} numbers, got {len(seq)}")
    if n is None and (len(seq) < lo_n or (hi_n is not None and len(seq) > hi_n)):
        want = f"{lo_n} to {hi_n}" if hi_n is not None else f"at least {lo_n}"
        raise at.error(name, f"expected {want} numbers, got {len(seq)}")
    return [req_number(x, at, f"{name}[{i}]", positive=positive) for i, x in enumerate(seq)]


def unknown_keys(d: Mapping[str, Any], allowed: Sequence[str], at: Where, name: str) -> None:
    """Refuse keys a table may not hold (typos such as ``mmp = 0.25``)."""
    extra = sorted(k for k in d if k not in allowed)
    if extra:
        raise at.error(name, f"unknown key(s) {', '.join(map(repr, extra))}; allowed: "
                             f"{', '.join(allowed)}")
