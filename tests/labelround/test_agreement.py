"""κ against the textbook examples; agreement figures of small hand-made rounds."""

from __future__ import annotations

import numpy as np
import pytest

from mfcurate.labelround.agreement import (
    agreement,
    cohen_kappa,
    fleiss_kappa,
    grouped_agreement,
)

MF, NOT, UNC = "mitotic_figure", "mitotic_like", "uncertain"

# Fleiss (1971) as tabulated on Wikipedia's "Fleiss' kappa" page: 10 subjects, 14 raters,
# 5 categories; P-bar = 0.378, P-bar_e = 0.213, kappa = 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]


def test_fleiss_textbook_example() -> None:
    k = fleiss_kappa(FLEISS_TABLE)
    assert k == pytest.approx(0.2099, abs=5e-4)


def test_cohen_textbook_example() -> None:
    # Wikipedia "Cohen's kappa": 50 proposals, yes/yes 20, yes/no 5, no/yes 10, no/no 15:
    # p_o = 0.7, p_e = 0.5, kappa = 0.4.
    a = [MF] * 25 + [NOT] * 25
    b = [MF] * 20 + [NOT] * 5 + [MF] * 10 + [NOT] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_kappa_edge_cases() -> None:
    assert cohen_kappa([MF, MF, MF], [MF, MF, MF]) is None  # chance agreement 1
    assert cohen_kappa([MF, NOT], [NOT, MF]) == pytest.approx(-1.0)
    assert fleiss_kappa([[3, 0, 0]]) is None  # one subject
    with pytest.raises(ValueError):
        fleiss_kappa([[3, 0, 0], [1, 1, 0]])


def test_agreement_counts_and_groups() -> None:
    votes = {
        "a": {"r1": MF, "r2": MF, "r3": MF},
        "b": {"r1": MF, "r2": NOT, "r3": MF},
        "c": {"r1": NOT, "r2": NOT, "r3": UNC},
        "d": {"r1": NOT, "r2": NOT},  # r3 abstained: not in Fleiss, in the r1|r2 pair
    }
    labels = {"a": MF, "b": MF, "c": NOT, "d": UNC}
    a = agreement(votes, ["r1", "r2", "r3"], labels)
    assert a["objects"] == 4 and a["fleiss_objects"] == 3
    assert a["percent_agreement"] == 0.5
    assert a["equivocal"] == 0.5  # b (split) and c (an uncertain vote)
    assert a["unresolved"] == 0.25
    conf = np.array(a["confusion"])
    assert conf.sum() == 2 * (3 + 3 + 3 + 1)  # pairs per object, both orders
    assert (conf == conf.T).all()
    assert set(a["cohen_kappa"]) == {"r1|r2", "r1|r3", "r2|r3"}
    g = grouped_agreement(votes, {"a": "breast", "b": "breast", "c": "lymphoma"},
                          ["r1", "r2", "r3"])
    assert set(g["by_tumour_type"]) == {"breast", "lymphoma", "unknown"}
    assert g["by_tumour_type"]["breast"]["objects"] == 2
