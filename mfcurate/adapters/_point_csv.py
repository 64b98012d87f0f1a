"""Strict reader of the challenge-style point csv files (TUPAC16, MITOS-ATYPIA-14, ICPR 2012).

The files have no header: one object per line, comma-separated numbers.  An empty file is a
valid "no object here".  Every real file with content ends with a line break (checked on all
1,136 non-empty TUPAC-AL files), so a file that ends mid-line is reported as truncated instead
of silently yielding a shortened last record.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from mfcurate.adapters.fields import Where
from mfcurate.errors import SourceFormatError


def read_number_rows(path: Path, *, min_fields: int, max_fields: int | None = None,
                     even: bool = False, names: Sequence[str] = ()
                     ) -> list[tuple[int, list[float]]]:
    """Parse a header-less numeric csv into ``(line number, values)`` rows.

    A UTF-8 byte-order mark (what Excel writes) is accepted.  Every value must be a finite
    number: ``nan``, ``inf`` and text are errors naming the line and the field.

    Args:
        path: the csv file.
        min_fields: fewest values per line.
        max_fields: most values per line (None = unbounded).
        even: the number of values must be even (pixel lists of ``a,b`` pairs).
        names: field names for the messages (``("row", "col")``); fields past them are
            named by their 1-based position.

    Returns:
        One entry per non-blank line, with 1-based line numbers.

    Raises:
        SourceFormatError: unreadable, not text, ends mid-line, or a line that breaks the rules
            (the message names the file and the line).
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SourceFormatError(path, f"cannot read ({exc})") from exc
    raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 BOM (Excel) is not content
    if not raw.strip():
        return []
    if not raw.endswith((b"\n", b"\r")):
        raise SourceFormatError(path, "file ends in the middle of a line (truncated?)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceFormatError(path, f"not UTF-8 text ({exc})") from exc
    rows: list[tuple[int, list[float]]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s:
            continue
        parts = [p.strip() for p in s.replace(";", ",").split(",")]
        if parts and parts[-1] == "":
            parts = parts[:-1]  # tolerate a trailing comma
        vals = [_value(path, lineno, k, p, names) for k, p in enumerate(parts)]
        if len(vals) < min_fields or (max_fields is not None and len(vals) > max_fields):
            want = f"{min_fields}" if max_fields == min_fields else \
                f"{min_fields} to {max_fields}" if max_fields else f"at least {min_fields}"
            raise SourceFormatError(path, f"line {lineno}: expected {want} values, "
                                          f"got {len(vals)}")
        if even and len(vals) % 2:
            raise SourceFormatError(path, f"line {lineno}: odd number of values ({len(vals)}) "
                                          "in a list of coordinate pairs")
        rows.append((lineno, vals))
    return rows


def _value(path: Path, lineno: int, k: int, raw: str, names: Sequence[str]) -> float:
    """Field ``k`` of a line as a finite float (SourceFormatError naming line and field)."""
    name = names[k] if k < len(names) else str(k + 1)
    try:
        v = float(raw)
    except ValueError:
        raise Where(path, f"line {lineno}").error(
            name, f"expected a number, got {raw[:40]!r}") from None
    if not math.isfinite(v):
        raise Where(path, f"line {lineno}").error(name, f"not a finite number ({raw!r})")
    return v
