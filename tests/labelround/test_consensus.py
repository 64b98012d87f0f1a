"""The consensus rules on hand-made votes."""

from __future__ import annotations

import pytest

from mfcurate.errors import UsageError
from mfcurate.labelround.consensus import check_rule, decide, written_label

MF, NOT, UNC = "mitotic_figure", "mitotic_like", "uncertain"


@pytest.mark.parametrize(("votes", "rule", "senior", "vote", "how"), [
    ({"a": MF, "b": MF, "c": MF}, "majority", None, MF, "unanimous"),
    ({"a": MF, "b": MF, "c": NOT}, "majority", None, MF, "majority"),
    ({"a": MF, "b": NOT}, "majority", None, UNC, "tie"),
    ({"a": MF, "b": NOT, "c": UNC}, "majority", None, UNC, "tie"),
    ({"a": UNC, "b": UNC, "c": MF}, "majority", None, UNC, "uncertain majority"),
    ({"a": MF, "b": NOT, "c": NOT, "d": MF, "e": UNC}, "majority", None, UNC, "tie"),
    ({"a": MF, "b": MF, "c": NOT}, "unanimous", None, UNC, "disagreement"),
    ({"a": NOT, "b": NOT}, "unanimous", None, NOT, "unanimous"),
    ({"a": MF, "b": NOT, "s": NOT}, "majority", "s", NOT, "majority"),
    ({"a": MF, "b": NOT}, "majority", "a", MF, "senior"),
    ({"a": MF, "b": MF, "s": NOT}, "senior", "s", NOT, "senior"),
    ({"a": MF, "b": MF, "s": MF}, "senior", "s", MF, "unanimous"),
    ({"a": MF, "b": NOT, "s": UNC}, "senior", "s", UNC, "disagreement"),
    ({"a": UNC, "b": UNC}, "unanimous", None, UNC, "disagreement"),
])
def test_rules(votes: dict[str, str], rule: str, senior: str | None, vote: str,
               how: str) -> None:
    d = decide(votes, rule, senior)
    assert d is not None
    assert (d.vote, d.decided_by) == (vote, how)
    assert d.equivocal == (len(set(votes.values())) > 1 or next(iter(votes.values())) == UNC)


def test_no_votes_and_checks() -> None:
    assert decide({}, "majority") is None
    with pytest.raises(UsageError):
        check_rule("plurality", None, ["a"])
    with pytest.raises(UsageError):
        check_rule("senior", None, ["a"])
    with pytest.raises(UsageError):
        check_rule("majority", "zed", ["a"])


def test_written_label_keeps_a_non_mf_label() -> None:
    assert written_label(NOT, "background") == "background"
    assert written_label(NOT, "mitotic_figure") == NOT
    assert written_label(NOT, "uncertain") == NOT
    assert written_label(MF, "background") == MF
    assert written_label(UNC, "background") == UNC
