"""Source adapters and their registry.

``ADAPTERS`` maps the CLI word (``mfcurate ingest <key> ROOT``) to the adapter class.  A new
source is registered here and nowhere else: the CLI, the contract test and the docs check all
read this dict.
"""

from __future__ import annotations

from mfcurate.adapters.base import AdapterConfig, SourceAdapter, SourceInfo

ADAPTERS: dict[str, type[SourceAdapter]] = {}


def register(cls: type[SourceAdapter]) -> type[SourceAdapter]:
    """Class decorator that adds an adapter to :data:`ADAPTERS` under its ``key``."""
    if cls.key in ADAPTERS and ADAPTERS[cls.key] is not cls:
        raise ValueError(f"adapter key {cls.key!r} registered twice")
    ADAPTERS[cls.key] = cls
    return cls


def get_adapter(key: str) -> type[SourceAdapter]:
    """Adapter class for a key; ValueError listing the known keys otherwise."""
    _load_all()
    try:
        return ADAPTERS[key]
    except KeyError as exc:
        raise ValueError(f"unknown source {key!r}; known: {', '.join(sorted(ADAPTERS))}") from exc


def _load_all() -> None:
    """Import every adapter module in this package so that each registers itself."""
    import importlib
    import pkgutil

    import mfcurate.adapters as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name not in {"base"} and not mod.name.startswith("_"):
            importlib.import_module(f"mfcurate.adapters.{mod.name}")


def all_adapters() -> dict[str, type[SourceAdapter]]:
    """The registry with every adapter module imported."""
    _load_all()
    return dict(sorted(ADAPTERS.items()))


__all__ = ["ADAPTERS", "AdapterConfig", "SourceAdapter", "SourceInfo", "all_adapters",
           "get_adapter", "register"]
