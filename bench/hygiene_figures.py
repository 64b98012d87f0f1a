"""Label-hygiene figures of a demo run (issue 12): ``python bench/hygiene_figures.py DEMO_DIR``.

Prints, for ``DEMO_DIR/dataset`` and its patch store ``DEMO_DIR/patches``: the share of
mitotic-figure masks with two or more parts, negatives centred inside a mitotic figure's box
(among the dataset's trainable objects and among the store's negative patches) and the
disk-mask share of each class's patches (:func:`mfcurate.classifier.hygiene.hygiene_figures`).
Run it on a demo built before and after a change to compare.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mfcurate.classifier.hygiene import hygiene_figures


def main(argv: list[str]) -> None:
    """Print the figures of each demo folder given."""
    for d in argv or ["demo-out"]:
        root = Path(d)
        store = root / "patches"
        figs = hygiene_figures(root / "dataset", store if (store / "store.json").exists()
                               else None)
        print(f"{root}: {json.dumps(figs, sort_keys=True)}")


if __name__ == "__main__":
    main(sys.argv[1:])
