"""The dataset: Parquet parts per step, one manifest, one selection.

* :mod:`.store` — :class:`Dataset`: open, read images, effective objects, raw parts.
* :mod:`.parts` — the derive contract: which step writes which part, which part wins.
* :mod:`.resolve` — effective rows (base rows with the layers applied).
* :mod:`.commit` — one atomic commit of several parts at once.
* :mod:`.select` — :class:`Selection`, the only way commands choose what they read.
* :mod:`.counts` — :func:`tally`, the only way objects are counted.
* :mod:`.manifest`, :mod:`.files` — the commit point, atomic writes, checks.
"""

from mfcurate.dataset.counts import tally
from mfcurate.dataset.files import (
    atomic_folder,
    atomic_write_bytes,
    atomic_write_json,
    read_parquet,
    recover_folder,
    remove_stale_temporaries,
    remove_temporaries_of,
    sha256_file,
    write_parquet_atomic,
)
from mfcurate.dataset.manifest import FORMAT_NAME, MANIFEST
from mfcurate.dataset.parts import PARTS, PartKind, PartSpec, part_spec
from mfcurate.dataset.select import (
    Selection,
    as_selection,
    iter_selected,
    parse_holdout,
    read_image_list,
    select_images,
    select_objects,
    select_regions,
    summarize,
)
from mfcurate.dataset.store import Dataset

__all__ = [
    "FORMAT_NAME",
    "MANIFEST",
    "PARTS",
    "Dataset",
    "PartKind",
    "PartSpec",
    "Selection",
    "as_selection",
    "atomic_folder",
    "atomic_write_bytes",
    "atomic_write_json",
    "iter_selected",
    "parse_holdout",
    "part_spec",
    "read_image_list",
    "read_parquet",
    "recover_folder",
    "remove_stale_temporaries",
    "remove_temporaries_of",
    "select_images",
    "select_objects",
    "select_regions",
    "sha256_file",
    "summarize",
    "tally",
    "write_parquet_atomic",
]
