"""The second stage of a search: from ranked chunks to the passages the model reads.

The first stage (``ChunkStore.search``) ranks chunks. A chunk is cut at a size limit, so the fact a
question asks about can sit just past its end, in the next chunk of the same section; and several
candidates can say the same thing (a policy quoted in meeting notes), crowding out distinct ones.
Measured on the sample handbook (bench/README.md, "Second stage"), this stage:

1. drops near-duplicates: a candidate whose words overlap an earlier, better-ranked one by at least
   ``dedup`` (Jaccard similarity of their word 3-shingles) is left out;
2. folds a candidate into an already chosen passage of the same document when it lies at most
   ``fold_gap`` chunks before or after it (the chunk between joins too), so neighbours take one slot,
   not two;
3. expands each chosen passage with the ``neighbours`` chunks on each side, whatever their heading
   (a short section's fact often sits in the next one, or the one before), fetched by id: chunk ids are
   deterministic by document, version and position. ``backward`` off keeps to what follows the chunk
   that ranked (folds too).

Each passage keeps the chunk and rank of its best-ranked member, so its citation (document, heading,
page) is the one the search found; its text covers the whole span, in document order, with the overlap
the chunker repeats between neighbours removed. The passage also records where the ranked chunk's own
text begins in it (``Chunk.start``): the model reads the whole passage, a source's quote
(``Chunk.quote``) starts at the chunk that ranked, under its header line, as it would for that chunk alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from knowledge.types import Chunk, Hit

_WORD = re.compile(r"\w+")

# (document id, position) pairs -> the chunks found at those positions (missing ones left out)
NeighbourFetch = Callable[[Sequence[tuple[str, int]]], Iterable[Chunk]]


@dataclass(frozen=True)
class PassageSettings:
    """Defaults chosen by bench/bench_quality.py --only second_stage; see bench/README.md."""

    neighbours: int = 1  # chunks added on each side of a chosen passage (0: none)
    dedup: float = 0.8  # Jaccard similarity at or above which a candidate is a near-duplicate (1.0: off)
    fold_gap: int = 2  # a candidate this close to a chosen passage of its document joins it (0: off)
    max_span: int = 5  # chunks one passage may cover, neighbours included
    same_heading: bool = False  # neighbours only from the chosen chunk's own heading
    backward: bool = True  # neighbours and folds before the chosen chunk too, not only after it

    @property
    def enabled(self) -> bool:
        return self.neighbours > 0 or self.dedup < 1.0 or self.fold_gap > 0

    def candidates(self, k: int) -> int:
        """How many first-stage chunks to consider for k passages."""
        return max(3 * k, 20) if self.enabled else k


@dataclass
class _Passage:
    hit: Hit
    members: dict[int, Chunk] = field(default_factory=dict)  # position -> chunk

    @property
    def low(self) -> int:
        return min(self.members)

    @property
    def high(self) -> int:
        return max(self.members)


def shingles(text: str) -> frozenset[tuple[str, ...]]:
    """Word 3-grams of a chunk's body (its header line of title and headings left out)."""
    body = text.split("\n", 1)[1] if "\n" in text else text
    words = _WORD.findall(body.casefold())
    if len(words) < 3:
        return frozenset({tuple(words)}) if words else frozenset()
    return frozenset(zip(words, words[1:], words[2:], strict=False))


def jaccard(a: frozenset, b: frozenset) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def build_passages(
    hits: Sequence[Hit], k: int, settings: PassageSettings, fetch: NeighbourFetch | None = None
) -> list[Hit]:
    """At most k passages from the ranked candidate chunks, best first (ranks renumbered 1..n)."""
    chosen: list[_Passage] = []
    seen: list[frozenset] = []  # shingles of the chosen passages' first chunks
    for hit in hits:
        chunk = hit.chunk
        home = _foldable(chosen, chunk, settings)
        if home is not None:
            home.members[chunk.position] = chunk
            continue
        if len(chosen) == k:
            continue  # only folds are left to find
        if settings.dedup < 1.0:
            words = shingles(chunk.text)
            if any(jaccard(words, other) >= settings.dedup for other in seen):
                continue
            seen.append(words)
        chosen.append(_Passage(hit, {chunk.position: chunk}))
    if fetch is not None:
        _fill(chosen, settings, fetch)
    return [Hit(chunk=_joined(p), score=p.hit.score, rank=rank) for rank, p in enumerate(chosen, start=1)]


def _foldable(chosen: list[_Passage], chunk: Chunk, settings: PassageSettings) -> _Passage | None:
    if settings.fold_gap <= 0:
        return None
    for passage in chosen:
        if passage.hit.chunk.doc_id != chunk.doc_id:
            continue
        if chunk.position in passage.members:
            return passage  # already covered (cannot happen for distinct chunks, kept for safety)
        low, high = min(passage.low, chunk.position), max(passage.high, chunk.position)
        first = passage.low - settings.fold_gap if settings.backward else passage.hit.chunk.position + 1
        near = first <= chunk.position <= passage.high + settings.fold_gap
        if near and high - low + 1 <= settings.max_span:
            return passage
    return None


def _fill(chosen: list[_Passage], settings: PassageSettings, fetch: NeighbourFetch) -> None:
    """Fetch the chunks between folded members, and the neighbours on each side, in one request."""
    wanted: dict[tuple[str, int], _Passage] = {}
    covered = {(p.hit.chunk.doc_id, pos) for p in chosen for pos in p.members}  # never said twice
    for passage in chosen:
        doc = passage.hit.chunk.doc_id
        gaps = [pos for pos in range(passage.low, passage.high + 1) if pos not in passage.members]
        for pos in gaps:
            wanted[(doc, pos)] = passage
        room = settings.max_span - (passage.high - passage.low + 1)
        sides = []
        for step in range(1, settings.neighbours + 1):
            sides += [passage.high + step, passage.low - step] if settings.backward else [passage.high + step]
        for pos in sides:
            if room <= 0:
                break
            if pos >= 0 and (doc, pos) not in wanted and (doc, pos) not in covered:
                wanted[(doc, pos)] = passage
                room -= 1
    if not wanted:
        return
    ranked_spans = {id(p): (p.low, p.high) for p in chosen}
    for chunk in fetch(list(wanted)):
        passage = wanted.get((chunk.doc_id, chunk.position))
        if passage is None or chunk.access != passage.hit.chunk.access:
            continue
        if settings.same_heading and chunk.heading != passage.hit.chunk.heading:
            inside = passage.low < chunk.position < passage.high
            if not inside:
                continue
        passage.members[chunk.position] = chunk
    for passage in chosen:
        _trim(passage, *ranked_spans[id(passage)])


def _trim(passage: _Passage, low: int, high: int) -> None:
    """Keep the ranked span and the neighbours that join it without a hole (one may be missing:
    another heading, or a newer version of the document)."""
    while low - 1 in passage.members:
        low -= 1
    while high + 1 in passage.members:
        high += 1
    passage.members = {pos: chunk for pos, chunk in passage.members.items() if low <= pos <= high}


def _joined(passage: _Passage) -> Chunk:
    """The ranked chunk with the members' texts in document order as its text: one header line, the
    chunker's overlap said once, and where the ranked chunk's own text begins (for its quote)."""
    ranked = passage.hit.chunk
    text = header = ""
    start, shared = 0, False
    for pos in sorted(passage.members):
        part = passage.members[pos].text
        first, _, body = part.partition("\n")
        if not text:
            text, header = part, first
            continue
        if first == header:
            part = body
        cut = _overlap(text, part)
        if pos == ranked.position:  # its overlap with the chunk before is part of its own text
            start, shared = (len(text) - cut if cut else len(text) + 1), first == header
        text += part[cut:] if cut else "\n" + part
    return replace(ranked, text=text, start=start, header_shared=shared)


def _overlap(before: str, after: str, longest: int = 600, shortest: int = 20) -> int:
    """The length of the longest start of ``after`` that ``before`` ends with (the chunker's overlap)."""
    if len(after) < shortest:
        return 0
    tail = before[-longest:]
    probe = after[:shortest]
    start = tail.find(probe)
    while start != -1:  # the earliest match that runs to the end is the longest overlap
        if after.startswith(tail[start:]):
            return len(tail) - start
        start = tail.find(probe, start + 1)
    return 0
