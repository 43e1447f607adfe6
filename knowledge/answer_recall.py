"""Answer recall@k: whether the passages a search returns hold a question's fact, not only its document.

A labelled question's ``must_contain`` strings are the fact ("15 minutes", "0.5%"). The fact is found
within the first k passages when every string appears in at least one of them (a question that needs
two documents has its strings in two passages). Matching ignores case and runs of whitespace, so a
table cell or a line break inside a phrase still matches.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

ANSWER_KS = (1, 3, 6, 10)
_SPACE = re.compile(r"\s+")


def normalised(text: str) -> str:
    return _SPACE.sub(" ", text).casefold().strip()


def fact_found(passages: Sequence[str], must_contain: Sequence[str]) -> bool:
    """Every ``must_contain`` string appears in one of the passages."""
    if not must_contain:
        raise ValueError("a question without must_contain has no answer recall")
    texts = [normalised(text) for text in passages]
    return all(any(normalised(needle) in text for text in texts) for needle in must_contain)


def answer_recall(
    passages: Sequence[str], must_contain: Sequence[str], ks: Sequence[int] = ANSWER_KS
) -> dict[str, float]:
    """``{"answer_recall@k": 1.0 or 0.0}`` for each k, over the passages as ranked."""
    return {f"answer_recall@{k}": float(fact_found(passages[:k], must_contain)) for k in ks}
