"""The mfcurate exception hierarchy.

Every error that a user can cause with bad input derives from :class:`MfcurateError`; the CLI
prints its message as one line on stderr and exits with code 1.  Subclasses also inherit the
matching builtin so that ``except FileNotFoundError`` keeps working for library callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class MfcurateError(Exception):
    """Base class of all user-facing mfcurate errors."""


class SourceNotFoundError(MfcurateError, FileNotFoundError):
    """A source root, or a file the adapter needs inside it, does not exist.

    Args:
        root: the root folder the user gave.
        looked_for: the file names or patterns the adapter looked for.
        source: the adapter key, for the message.
    """

    def __init__(self, root: Path | str, looked_for: Sequence[str], source: str = "") -> None:
        self.root = Path(root)
        self.looked_for = list(looked_for)
        what = ", ".join(self.looked_for)
        prefix = f"{source}: " if source else ""
        if not self.root.exists():
            msg = f"{prefix}root folder {self.root} does not exist (expected it to hold {what})"
        else:
            msg = f"{prefix}none of {what} found in {self.root}"
        super().__init__(msg)


class SourceFormatError(MfcurateError, ValueError):
    """An annotation or image file is malformed.

    Args:
        path: the offending file.
        detail: what is wrong, ideally with the line or record.
    """

    def __init__(self, path: Path | str, detail: str) -> None:
        self.path = Path(path)
        self.detail = detail
        super().__init__(f"{self.path}: {detail}")


class SchemaValidationError(MfcurateError, ValueError):
    """A table does not satisfy the mfcurate schema.

    Args:
        table: ``"images"`` or ``"objects"``.
        problem: what rule was broken.
        keys: the first offending keys (at most a handful are shown).
    """

    def __init__(self, table: str, problem: str, keys: Sequence[str] = ()) -> None:
        self.table = table
        self.problem = problem
        self.keys = list(keys)
        shown = ", ".join(self.keys[:5])
        more = f" (+{len(self.keys) - 5} more)" if len(self.keys) > 5 else ""
        suffix = f": {shown}{more}" if shown else ""
        super().__init__(f"{table} table: {problem}{suffix}")


class DatasetError(MfcurateError, ValueError):
    """A dataset folder is missing, corrupt or inconsistent."""


class DependencyNotFoundError(MfcurateError, ImportError):
    """An optional dependency is not installed."""


class RegistrationError(MfcurateError):
    """Slide registration failed (no overlap, empty slide, ...)."""


class UsageError(MfcurateError):
    """Options that cannot work together; the CLI maps it to exit code 2."""
