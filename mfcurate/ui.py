"""Consoles that never read user text as markup.

Paths, file names and error messages come from users; printed through rich markup, a path
holding ``[bold]`` turns into another path and ``[/x]`` crashes the printer.  A
:class:`SafeConsole` prints every string literally, except one leading label in one of the
project's own styles (``"[green]wrote[/green] {path}"``), so call sites keep their colours
and what follows the label is never interpreted.
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.text import Text

#: The styles a leading label may use.
LABEL_STYLES = ("green", "yellow", "red", "bold", "dim")
_LABEL = re.compile(r"\[(" + "|".join(LABEL_STYLES) + r")\]([^\[\]]*)\[/\1\]")


def literal(obj: Any) -> Any:
    """A string as :class:`Text` (its leading style label applied, the rest literal)."""
    if not isinstance(obj, str):
        return obj
    m = _LABEL.match(obj)
    if m is None:
        return Text(obj)
    return Text.assemble((m.group(2), m.group(1)), obj[m.end():])


class SafeConsole(Console):
    """A rich console whose ``print`` treats strings as literal text (see the module)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("markup", False)
        kwargs.setdefault("highlight", False)
        super().__init__(**kwargs)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        kwargs.pop("markup", None)
        super().print(*(literal(o) for o in objects), **kwargs)
