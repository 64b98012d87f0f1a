"""Consensus rules: one label per object from its raters' votes.

Votes are ``mitotic_figure`` (MF), ``mitotic_like`` (not MF) or ``uncertain``.

* ``majority``: the vote of more than half of the raters wins when it is MF or not MF;
* ``unanimous``: every rater cast the same MF or not-MF vote;
* ``senior``: every rater cast the same MF or not-MF vote, else the senior decides
  (``senior`` must be named; the senior is one of the round's raters).

An object the rule leaves undecided — a tie, no majority, an ``uncertain`` majority, a
split — is settled by the senior's vote when a senior is named and voted MF or not MF;
otherwise its label is ``uncertain`` (unresolved).  An object is **equivocal** when its votes
were not all the same certain vote (a disagreement or at least one ``uncertain``).

The written label of a not-MF decision is the object's own non-MF label when it has one
(``background``, ``granulocyte``...), else ``mitotic_like``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from mfcurate.errors import UsageError
from mfcurate.schemas.vocab import Label

RULES = ("majority", "unanimous", "senior")
CERTAIN = frozenset({Label.MITOTIC_FIGURE.value, Label.MITOTIC_LIKE.value})
#: Non-MF labels a not-MF decision keeps.
NOT_MF_LABELS = frozenset(lab.value for lab in Label
                          if lab not in (Label.MITOTIC_FIGURE, Label.UNCERTAIN))


@dataclass(frozen=True)
class Decision:
    """The consensus of one object.

    Attributes:
        vote: the winning vote label (``uncertain`` when unresolved).
        decided_by: ``unanimous``, ``majority``, ``senior``, or why it stayed uncertain
            (``tie``, ``no majority``, ``uncertain majority``, ``disagreement``).
        equivocal: the votes were not all the same certain vote.
        n_votes: votes cast.
    """

    vote: str
    decided_by: str
    equivocal: bool
    n_votes: int

    @property
    def resolved(self) -> bool:
        return self.vote != Label.UNCERTAIN.value


def check_rule(rule: str, senior: str | None, raters: list[str]) -> None:
    """Raise :class:`UsageError` for an unknown rule, a missing or unknown senior."""
    if rule not in RULES:
        raise UsageError(f"--rule must be one of {', '.join(RULES)} (got {rule!r})")
    if rule == "senior" and not senior:
        raise UsageError("--rule senior needs --senior NAME")
    if senior and senior not in raters:
        raise UsageError(f"--senior {senior!r} is not a rater of the round "
                         f"({', '.join(raters)})")


def decide(votes: Mapping[str, str], rule: str, senior: str | None = None) -> Decision | None:
    """The consensus of one object's votes ``{rater: vote label}``; None without votes."""
    if not votes:
        return None
    counting = list(votes.values())
    n = len(counting)
    equivocal = len(set(counting)) > 1 or counting[0] not in CERTAIN
    outcome = _apply(counting, "unanimous" if rule == "senior" else rule)
    if outcome in CERTAIN:
        return Decision(outcome, "unanimous" if len(set(counting)) == 1 else rule, equivocal, n)
    s_vote = votes.get(senior) if senior else None
    if s_vote in CERTAIN:
        return Decision(str(s_vote), "senior", equivocal, n)
    return Decision(Label.UNCERTAIN.value, outcome, equivocal, n)


def _apply(votes: list[str], rule: str) -> str:
    """A certain vote label, or the reason for none."""
    if not votes:
        return "no votes"
    counts = Counter(votes).most_common()
    top, k = counts[0]
    if rule == "unanimous":
        return top if len(counts) == 1 and top in CERTAIN else "disagreement"
    if 2 * k > len(votes):
        return top if top in CERTAIN else "uncertain majority"
    return "tie" if len(counts) > 1 and counts[1][1] == k else "no majority"


def written_label(vote: str, prior: str | None) -> str:
    """The dataset label of a decision, given the object's label before the round."""
    if vote == Label.MITOTIC_LIKE.value and prior in NOT_MF_LABELS:
        return str(prior)
    return vote
