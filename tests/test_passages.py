"""The second stage of a search (knowledge/passages.py) on real Milvus Lite, real parsers, the real local
embedder and a real SQLite manifest: what the passages a search returns hold."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from bot.citations import build_sources, snippet
from bot.retrieval import PASSAGE_CHARS, format_passages, passages_text
from knowledge.base import KnowledgeBase
from knowledge.config import KnowledgeConfig
from knowledge.embedders import LocalEmbedder
from knowledge.passages import PassageSettings
from knowledge.store import ChunkStore
from knowledge.types import WORKSPACE, AccessScope, Chunk

FIRST_STAGE_ONLY = PassageSettings(neighbours=0, dedup=1.0, fold_gap=0)

# One section longer than a chunk: the question's words are all in its first paragraph, the number
# it asks for only in the second, so the best chunk alone does not hold the fact.
LAPTOPS = textwrap.dedent(
    """\
    # Lost or stolen laptops

    ## Reporting a lost laptop

    A lost or stolen work laptop must be reported at once. Reporting a lost or stolen laptop quickly
    protects customer data, so report a lost laptop or a stolen laptop before anything else, even at
    night or at the weekend.

    The Security desk takes these calls around the clock on extension 4417. Give them the asset tag
    printed under the keyboard and where the device was last seen.

    Afterwards IT ships a replacement device within two working days, already enrolled and encrypted,
    to your home address or the nearest office, whichever you prefer.
    """
)
# Two short sections: a question about the second ranks its chunk; the rule it depends on is the section before.
EXPENSES = textwrap.dedent(
    """\
    # Travel expenses

    ## Approval

    Any trip abroad needs written approval from a director before anything is booked, or it is not repaid.

    ## Reimbursement

    Reimbursement claims are filed in the finance portal with the receipts attached, and the money is paid
    with the next salary run. Claims older than ninety days are not reimbursed.
    """
)
PARKING = textwrap.dedent(
    """\
    # Parking

    Parking permits for the staff car park are renewed every January through the facilities portal.
    A renewed permit costs nothing; a lost permit is replaced for a fee of 15 pounds.
    """
)
PARKING_FEES = textwrap.dedent(
    """\
    # Visitor parking

    Visitors park in bays V1 to V12. Reception hands out a day permit; bays are free before 10 a.m.
    """
)


@pytest.fixture
def kb(kb_config: KnowledgeConfig, docs_dir: Path):
    (docs_dir / "laptops.md").write_text(LAPTOPS)
    (docs_dir / "parking.md").write_text(PARKING)
    (docs_dir / "copies").mkdir()
    (docs_dir / "copies" / "parking.md").write_text(PARKING)  # the same policy kept in two folders
    (docs_dir / "visitor-parking.md").write_text(PARKING_FEES)
    (docs_dir / "expenses.md").write_text(EXPENSES)
    base = KnowledgeBase(replace(kb_config, chunk_size=300, chunk_overlap=60))
    assert base.sync().ok
    yield base
    base.close()


def with_passages(kb: KnowledgeBase, settings: PassageSettings) -> KnowledgeBase:
    kb.config = replace(kb.config, passages=settings)
    return kb


QUESTION = "How quickly must a lost or stolen laptop be reported?"


# Folding joins a neighbour that ranked among the candidates; expansion fetches it by id whether it
# ranked or not (in a collection this small every chunk is a candidate, so each is tested alone too).
NEIGHBOURS_ONLY = PassageSettings(fold_gap=0)
FOLD_ONLY = PassageSettings(neighbours=0)


@pytest.mark.parametrize(
    "settings", [PassageSettings(), NEIGHBOURS_ONLY, FOLD_ONLY], ids=["default", "neighbours", "fold"]
)
def test_the_best_passage_carries_the_fact_from_the_next_chunk(
    kb: KnowledgeBase, settings: PassageSettings
) -> None:
    first = with_passages(kb, FIRST_STAGE_ONLY).search(QUESTION, k=1)
    assert first[0].chunk.doc_path == "laptops.md"
    assert "4417" not in first[0].chunk.text  # the chunk the search ranks first stops before the fact

    [passage] = with_passages(kb, settings).search(QUESTION, k=1)
    assert passage.chunk.doc_path == "laptops.md"
    assert passage.chunk.heading == first[0].chunk.heading  # the citation is the chunk that ranked
    assert passage.chunk.chunk_id == first[0].chunk.chunk_id
    assert "4417" in passage.chunk.text
    text = passage.chunk.text
    assert text.count("Lost or stolen laptops") == 1  # one header line, not one per chunk
    # The chunker repeats the end of one chunk at the start of the next: the passage says it once.
    words = text.split()
    runs = [tuple(words[i : i + 6]) for i in range(len(words) - 5)]
    assert len(runs) == len(set(runs))
    assert len(passage.chunk.text) > len(first[0].chunk.text)
    if "replacement device" in text:  # document order, whichever chunk ranked first
        assert text.index("extension 4417") < text.index("replacement device")


@pytest.mark.parametrize(
    ("question", "before"),
    [
        # the chunk before is in the same section: the passage writes its header line once
        ("When does IT ship a replacement laptop, and is it encrypted?", "extension 4417"),
        # the chunk before is another section: each keeps its own header line
        (
            "How are reimbursement claims for travel expenses filed and paid?",
            "written approval from a director",
        ),
    ],
    ids=["same heading", "section before"],
)
def test_a_passage_holds_the_chunk_before_the_hit_and_its_quote_starts_at_the_hit(
    kb: KnowledgeBase, question: str, before: str
) -> None:
    [ranked] = with_passages(kb, FIRST_STAGE_ONLY).search(question, k=1)
    assert ranked.chunk.position > 0 and before not in ranked.chunk.text

    [passage] = with_passages(kb, PassageSettings()).search(question, k=1)
    assert passage.chunk.chunk_id == ranked.chunk.chunk_id
    # The writer reads the whole passage, the chunk before included, in document order.
    written = format_passages(question, "hybrid", [(1, passage.chunk)])
    assert before in written
    assert written.index(before) < written.index(" ".join(ranked.chunk.text.split("\n", 1)[1].split()[:4]))
    # A source's quote, in an answer and in a search-only reply, is the ranked chunk's, as if alone.
    [source] = build_sources([1], {1: passage.chunk})
    assert source.snippet == snippet(ranked.chunk.text)
    reply = passages_text("Passages:", [(1, passage.chunk)])
    assert reply.split("\n> ", 1)[1] == snippet(ranked.chunk.text, PASSAGE_CHARS)


def test_a_copy_of_a_passage_gives_its_place_to_a_distinct_one(kb: KnowledgeBase) -> None:
    question = "How do I renew my staff parking permit and what does it cost?"
    first = with_passages(kb, FIRST_STAGE_ONLY).search(question, k=2)
    assert sorted(hit.chunk.doc_path for hit in first) == ["copies/parking.md", "parking.md"]

    passages = with_passages(kb, PassageSettings()).search(question, k=2)
    paths = [hit.chunk.doc_path for hit in passages]
    assert paths[0] in ("parking.md", "copies/parking.md")
    assert paths[1] == "visitor-parking.md"
    assert [hit.rank for hit in passages] == [1, 2]


def test_neighbours_of_an_edited_document_come_from_its_indexed_version(
    kb: KnowledgeBase, docs_dir: Path
) -> None:
    (docs_dir / "laptops.md").write_text(LAPTOPS.replace("4417", "5520"))
    assert kb.sync().updated == 1
    [passage] = with_passages(kb, NEIGHBOURS_ONLY).search(QUESTION, k=1)
    assert "5520" in passage.chunk.text and "4417" not in passage.chunk.text


def test_a_search_without_the_second_stage_returns_the_chunks_as_ranked(kb: KnowledgeBase) -> None:
    hits = with_passages(kb, FIRST_STAGE_ONLY).search(QUESTION, k=3)
    assert [hit.rank for hit in hits] == [1, 2, 3]
    assert all(len(hit.chunk.text) <= 300 + 160 for hit in hits)  # single chunks: size plus header


def test_chunks_by_id_returns_only_what_the_scope_may_see(tmp_path: Path) -> None:
    embedder = LocalEmbedder()
    config = KnowledgeConfig(milvus_uri=str(tmp_path / "milvus.db"), collection="by_id")
    chunks = [
        Chunk(f"c{i}", "d1", "notes.md", "Notes", "", None, i, f"text {i}", access=access)
        for i, access in enumerate([WORKSPACE, "channel:C0PRIVATE"])
    ]
    with ChunkStore(config, embedder.name, embedder.dimension) as store:
        store.upsert(chunks, embedder.embed_documents([c.text for c in chunks]))
        seen = store.chunks_by_id(["c0", "c1", "missing"], AccessScope.workspace())
        assert [c.chunk_id for c in seen] == ["c0"]
        private = store.chunks_by_id(["c1"], AccessScope.for_channel("C0PRIVATE", private=True))
        assert [(c.chunk_id, c.text, c.position) for c in private] == [("c1", "text 1", 1)]
        with pytest.raises(ValueError, match="invalid chunk_id"):
            store.chunks_by_id(['c0" or true'], AccessScope.workspace())


def test_the_second_stage_is_set_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.settings import Settings

    monkeypatch.setenv("THREADWISE_PASSAGE_NEIGHBOURS", "0")
    monkeypatch.setenv("THREADWISE_PASSAGE_FOLD", "0")
    monkeypatch.setenv("THREADWISE_PASSAGE_DEDUP", "1")
    assert not Settings().knowledge().passages.enabled
    monkeypatch.delenv("THREADWISE_PASSAGE_NEIGHBOURS")
    assert Settings().knowledge().passages == PassageSettings(fold_gap=0, dedup=1.0)
    monkeypatch.setenv("THREADWISE_PASSAGE_BACKWARD", "false")
    assert Settings().knowledge().passages == PassageSettings(fold_gap=0, dedup=1.0, backward=False)
