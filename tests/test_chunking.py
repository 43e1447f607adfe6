"""Chunks follow the document's structure, stay within their size, overlap, and are reproducible."""

from __future__ import annotations

import hashlib
import random
import re
from itertools import pairwise
from pathlib import Path

import pytest

from knowledge.chunking import chunk_document, header_line
from knowledge.readers import read_bytes
from knowledge.types import Chunk, ParsedDocument, Section
from tests.fixtures_docs import pdf_bytes

WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "pump", "valve", "seal")


def prose(rng: random.Random, paragraphs: int, sentences: tuple[int, int] = (1, 8)) -> str:
    def sentence() -> str:
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 16))]
        return " ".join(words).capitalize() + rng.choice(".!?")

    def paragraph() -> str:
        return " ".join(sentence() for _ in range(rng.randint(*sentences)))

    return "\n\n".join(paragraph() for _ in range(paragraphs))


def chunk(doc: ParsedDocument, **kw) -> list[Chunk]:
    kw.setdefault("doc_id", "doc-1")
    kw.setdefault("doc_path", "docs/guide.md")
    kw.setdefault("version", "v1")
    return chunk_document(doc, **kw)


def body(c: Chunk) -> str:
    """The chunk's text without its header line."""
    return c.text.split("\n", 1)[1]


def squash(text: str) -> str:
    return " ".join(text.split())


def rebuild(chunks: list[Chunk]) -> str:
    """The section text, put back together by dropping each chunk's overlap with the one before."""
    out = body(chunks[0])
    for before, after in pairwise(chunks):
        prev, nxt = body(before), body(after)
        carried = next((n for n in range(min(len(prev), len(nxt)), 0, -1) if prev.endswith(nxt[:n])), 0)
        out += " " + nxt[carried:]
    return out


@pytest.mark.parametrize(("size", "overlap"), [(200, 0), (300, 50), (1200, 150), (500, 240)])
def test_long_section_pieces_fit_overlap_and_lose_nothing(size: int, overlap: int) -> None:
    text = prose(random.Random(size + overlap), paragraphs=40)
    doc = ParsedDocument("Guide", [Section(text, ("Guide", "Setup"))])
    chunks = chunk(doc, size=size, overlap=overlap)

    header = "Guide — Setup\n"
    assert len(chunks) > 3
    for c in chunks:
        assert c.text.startswith(header)
        assert len(c.text) <= size + len(header)
    assert all(len(body(c)) >= size // 3 for c in chunks[:-1])  # no tiny fragments
    if overlap:
        for before, after in pairwise(chunks):
            carried = next((n for n in range(overlap, 0, -1) if body(before).endswith(body(after)[:n])), 0)
            assert carried > 0, "each piece starts with the end of the one before"
            assert re.match(r"\w", body(after))  # and starts at a word
    assert squash(rebuild(chunks)) == squash(text)


def test_paragraphs_that_fit_are_never_cut() -> None:
    paragraphs = [f"Paragraph {i} " + "word " * 30 + "end." for i in range(12)]  # ~180 characters each
    doc = ParsedDocument("T", [Section("\n\n".join(paragraphs))])
    chunks = chunk(doc, size=500, overlap=0)

    for paragraph in paragraphs:
        assert sum(paragraph in c.text for c in chunks) == 1
    assert all(body(c).startswith("Paragraph") and body(c).endswith("end.") for c in chunks)


def test_a_short_paragraph_is_filled_up_rather_than_stored_alone() -> None:
    long_paragraph = " ".join(f"Step {i} turns the valve a little further." for i in range(7))  # ~290 chars
    doc = ParsedDocument("T", [Section("Before you start.\n\n" + long_paragraph + "\n\nDone.")])
    chunks = chunk(doc, size=300, overlap=0)

    assert body(chunks[0]).startswith("Before you start.\n\nStep 0 turns")
    assert len(body(chunks[0])) > 150 and body(chunks[0]).endswith("further.")
    assert squash(rebuild(chunks)) == squash(doc.sections[0].text)


def test_long_paragraph_splits_at_sentences() -> None:
    sentences = [f"Sentence number {i} says something about pumps and valves." for i in range(40)]
    doc = ParsedDocument("T", [Section(" ".join(sentences))])
    chunks = chunk(doc, size=400, overlap=0)

    assert len(chunks) > 3
    for c in chunks:
        assert body(c).startswith("Sentence number") and body(c).endswith("valves.")


def test_text_without_punctuation_splits_between_words() -> None:
    words = [f"w{i:04d}" for i in range(600)]
    doc = ParsedDocument("T", [Section(" ".join(words))])
    chunks = chunk(doc, size=250, overlap=40)

    for c in chunks:
        assert set(body(c).split()) <= set(words)
        assert len(body(c)) <= 250
    assert squash(rebuild(chunks)) == " ".join(words)


def test_a_word_longer_than_the_size_is_cut() -> None:
    token = "".join(random.Random(5).choice("abcdef0123456789") for _ in range(2600))
    chunks = chunk(ParsedDocument("T", [Section(token)]), size=1000, overlap=100)

    assert [len(body(c)) for c in chunks] == [1000, 1000, 600]
    assert "".join(body(c) for c in chunks) == token  # no clean word start: no overlap


def test_chunk_ids_are_deterministic_and_versioned() -> None:
    doc = ParsedDocument("T", [Section(prose(random.Random(1), paragraphs=20))])
    first = chunk(doc, doc_id="abc", version="v1", size=300, overlap=30)
    again = chunk(doc, doc_id="abc", version="v1", size=300, overlap=30)
    edited = chunk(doc, doc_id="abc", version="v2", size=300, overlap=30)

    assert first == again
    assert [c.position for c in first] == list(range(len(first)))
    expected = [hashlib.sha1(f"abc:v1:{i}".encode()).hexdigest() for i in range(len(first))]
    assert [c.chunk_id for c in first] == expected
    assert all(len(c.chunk_id) == 40 for c in first)
    assert not {c.chunk_id for c in first} & {c.chunk_id for c in edited}


def test_markdown_headings_become_chunk_headings_and_header_lines() -> None:
    markdown = (
        "# Runbooks\n\nWho to call.\n\n## Database\n\nThe primary is db-1.\n\n"
        "### Failover\n\nPromote the replica with pg_ctl promote.\n\n## Cache\n\nRedis on cache-1.\n"
    )
    chunks = chunk(read_bytes(markdown.encode(), "runbooks.md"))

    assert [(c.heading, c.text) for c in chunks] == [
        ("Runbooks", "Runbooks\nWho to call."),
        ("Runbooks > Database", "Runbooks — Database\nThe primary is db-1."),
        (
            "Runbooks > Database > Failover",
            "Runbooks — Database > Failover\nPromote the replica with pg_ctl promote.",
        ),
        ("Runbooks > Cache", "Runbooks — Cache\nRedis on cache-1."),
    ]
    assert {c.title for c in chunks} == {"Runbooks"}


def test_a_chunk_never_spans_two_headings_even_when_both_are_small() -> None:
    doc = ParsedDocument("T", [Section("One.", ("A",)), Section("Two.", ("B",)), Section("Three.", ("A",))])
    assert [(c.heading, body(c)) for c in chunk(doc)] == [("A", "One."), ("B", "Two."), ("A", "Three.")]


def test_pdf_pages_are_chunked_separately_with_page_numbers() -> None:
    long_page = prose(random.Random(2), paragraphs=12)
    pages = ["Short first page.", "Second page, also short.", long_page.replace("!", ".").replace("?", ".")]
    doc = read_bytes(pdf_bytes(pages, title="Pump Manual"), "pump.pdf")
    chunks = chunk(doc, size=400, overlap=50)

    assert [c.page for c in chunks[:2]] == [1, 2]
    assert body(chunks[0]) == "Short first page."
    assert body(chunks[1]) == "Second page, also short."
    page_text = {s.page: squash(s.text) for s in doc.sections}
    assert len(chunks) > 3 and min(c.page for c in chunks[2:]) == 3  # the long text runs on from page 3
    assert all(squash(body(c)) in page_text[c.page] for c in chunks)  # each chunk within its one page
    assert all(c.text.startswith("Pump Manual\n") and c.heading == "" for c in chunks)


def test_csv_rows_are_packed_whole_and_in_order() -> None:
    rows = [f"host-{i},10.0.0.{i},{'primary' if i % 5 == 0 else 'replica'}" for i in range(200)]
    doc = read_bytes(("host,address,role\n" + "\n".join(rows)).encode(), "hosts.csv")
    chunks = chunk(doc, size=300, overlap=100)

    lines = [line for c in chunks for line in body(c).split("\n")]
    assert lines == [s.text for s in doc.sections]  # every row exactly once, whole, in order, no overlap
    assert lines[7] == "host: host-7; address: 10.0.0.7; role: replica"
    assert len(chunks) < len(rows) / 5
    assert all(len(body(c)) <= 300 for c in chunks)
    assert all(c.text.startswith("Hosts\n") for c in chunks)


def test_a_row_longer_than_the_size_is_split_on_its_own() -> None:
    doc = ParsedDocument("T", [Section("short row"), Section("long " * 100), Section("next row")])
    chunks = chunk(doc, size=120, overlap=0)
    assert body(chunks[0]) == "short row"
    assert body(chunks[-1]) == "next row"
    assert all(set(body(c).split()) == {"long"} for c in chunks[1:-1])


def test_empty_sections_make_no_chunks() -> None:
    doc = ParsedDocument("T", [Section("  \n "), Section("Real text.", ("H",)), Section("", ("Empty",))])
    assert [c.heading for c in chunk(doc)] == ["H"]
    assert chunk(ParsedDocument("T", [Section("\n\n")])) == []


def test_fields_are_passed_through() -> None:
    doc = ParsedDocument("Travel", [Section("Book trains.", ("Travel", "Rail"), page=3)])
    (c,) = chunk(doc, doc_id="d9", doc_path="people/travel.pdf", version="v7", access="channel:C1", url="u")
    assert c.to_dict() == {
        "chunk_id": hashlib.sha1(b"d9:v7:0").hexdigest(),
        "doc_id": "d9",
        "doc_path": "people/travel.pdf",
        "title": "Travel",
        "heading": "Travel > Rail",
        "page": 3,
        "position": 0,
        "text": "Travel — Rail\nBook trains.",
        "access": "channel:C1",
        "url": "u",
    }


def test_header_line_stays_short() -> None:
    header = header_line("T" * 500, ("Part",))
    assert len(header) <= 161 and header.endswith("…\n")
    assert header_line("", ()) == ""
    assert header_line("", ("A", "B")) == "A > B\n"


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (100, 100), (100, -1)])
def test_impossible_sizes_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="chunk"):
        chunk(ParsedDocument("T", [Section("x")]), size=size, overlap=overlap)


# --- tables -------------------------------------------------------------------------------------

SEVERITY_ROWS = [
    (
        "Sev-1",
        "Ledgerloom is down for many customers, or data is lost or corrupted",
        "API error rate above 10%",
    ),
    ("Sev-2", "A major feature is degraded for many customers", "API error rate above 5% for 10 minutes"),
    ("Sev-3", "A minor feature is broken for a few customers, with a workaround", "API error rate above 1%"),
    ("Sev-4", "Cosmetic, or internal only: a typo, a broken internal dashboard", "no customer impact"),
]


def severity_markdown(rows=SEVERITY_ROWS, extra_rows: int = 6) -> str:
    lines = ["| Severity | Definition | Threshold |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines += [
        f"| Drill-{i} | A practice incident for the game day in week {i} | none, a drill |"
        for i in range(extra_rows)
    ]
    return (
        "# Severity policy\n\n## Severity levels\n\nEvery incident gets a severity when it is declared.\n\n"
        + "\n".join(lines)
        + "\n\nWhen unsure between two levels, pick the higher one.\n"
    )


def test_a_long_table_is_split_into_row_groups_that_repeat_its_header() -> None:
    chunks = chunk(read_bytes(severity_markdown().encode(), "severity.md"), size=1200, overlap=150)
    tables = [c for c in chunks if "| Severity | Definition | Threshold |" in c.text]
    assert len(tables) >= 2  # the table (about 900 characters) is more than one ranked unit
    for c in tables:
        assert c.text.startswith(
            "Severity policy — Severity levels\n| Severity | Definition | Threshold |\n| --- |"
        )
        assert len(body(c)) <= 500
    rows = [line for c in tables for line in body(c).split("\n")[2:]]
    assert (
        rows
        == [line for line in severity_markdown().split("\n") if line.startswith("| S") or "Drill" in line][1:]
    )
    sev2 = [c for c in tables if "| Sev-2 |" in c.text]
    assert len(sev2) == 1  # each row once, whole, with the column names above it
    # The prose around the table is kept, under the same heading.
    assert any("Every incident gets a severity" in c.text for c in chunks)
    assert any("pick the higher one" in c.text for c in chunks)


def test_a_short_table_stays_with_the_text_around_it() -> None:
    text = "# Rota\n\nWho is on call.\n\n| week | engineer |\n| --- | --- |\n| 1 | Ana |\n| 2 | Bo |\n\nSwap freely.\n"
    (only,) = chunk(read_bytes(text.encode(), "rota.md"))
    assert (
        body(only)
        == "Who is on call.\n\n| week | engineer |\n| --- | --- |\n| 1 | Ana |\n| 2 | Bo |\n\nSwap freely."
    )


def test_html_and_docx_table_rows_are_grouped_with_their_header_row() -> None:
    rows = "".join(
        f"<tr><td>office-{i}</td><td>{'Leeds' if i % 2 else 'Lisbon'}</td><td>{100 + i} desks on floor {i}</td></tr>"
        for i in range(40)
    )
    html = f"<h1>Offices</h1><table><tr><th>office</th><th>city</th><th>capacity</th></tr>{rows}</table>"
    chunks = chunk(read_bytes(html.encode(), "offices.html"))
    assert len(chunks) > 2
    assert all(body(c).startswith("office | city | capacity\n") for c in chunks)
    assert all(len(body(c)) <= 500 for c in chunks)
    found = [c for c in chunks if "office-17 | Leeds | 117 desks on floor 17" in c.text]
    assert len(found) == 1


def test_a_lone_pipe_in_prose_is_not_a_table() -> None:
    text = "Run `ps aux | grep milvus` to find it.\nThen stop it.\n\nAnother paragraph."
    (only,) = chunk(ParsedDocument("T", [Section(text)]))
    assert body(only) == text


def test_csv_rows_are_grouped_small_enough_to_rank() -> None:
    rows = [f"svc-{i},Team {i % 7},{99 + i / 100:.2f}%,{200 + i} ms" for i in range(60)]
    doc = read_bytes(("service,owner,slo,p99\n" + "\n".join(rows)).encode(), "catalogue.csv")
    chunks = chunk(doc)  # the default size, 1200
    assert all(len(body(c)) <= 500 for c in chunks)
    lines = [line for c in chunks for line in body(c).split("\n")]
    assert lines == [s.text for s in doc.sections]
    assert "service: svc-42; owner: Team 0; slo: 99.42%; p99: 242 ms" in lines


# --- end to end: an edited table row is found by search --------------------------------------------


def test_an_edited_table_row_is_found_in_the_top_3_after_a_resync(tmp_path) -> None:
    """The issue's case: the Sev-2 threshold changes in a long table; after a sync, a question about
    that row finds the row (with the table's column names) among the first 3 passages."""
    from knowledge.base import KnowledgeBase
    from knowledge.config import KnowledgeConfig
    from knowledge.passages import PassageSettings
    from tests.corpus import write_corpus

    docs = tmp_path / "docs"
    write_corpus(docs)
    # The sample handbook's engineering pages compete: incidents, on-call, deploys, error rates.
    handbook = Path(__file__).resolve().parents[1] / "examples" / "handbook" / "engineering"
    for page in handbook.glob("*.md"):
        (docs / "handbook" / page.name).parent.mkdir(parents=True, exist_ok=True)
        (docs / "handbook" / page.name).write_text(page.read_text(encoding="utf-8"), encoding="utf-8")
    policy = docs / "engineering" / "severity.md"
    policy.write_text(severity_markdown(), encoding="utf-8")
    (docs / "engineering" / "alerts.md").write_text(
        "# Alerting\n\n## Error rates\n\nAlert on the API error rate of every service. An error rate above "
        "2% pages the primary; error budgets are reviewed monthly. Incidents follow the severity policy.\n",
        encoding="utf-8",
    )
    config = KnowledgeConfig(
        docs=(docs,),
        milvus_uri=str(tmp_path / "milvus.db"),
        database_url=f"sqlite:///{tmp_path}/tw.db",
        # The row groups as the first stage ranks them; the second stage would add the next group.
        passages=PassageSettings(neighbours=0, fold_gap=0, dedup=1.0),
    )
    kb = KnowledgeBase(config)
    try:
        assert kb.sync().ok
        edited = [
            (a, b, "API error rate above 2.5% for 10 minutes" if a == "Sev-2" else c)
            for a, b, c in SEVERITY_ROWS
        ]
        policy.write_text(severity_markdown(edited), encoding="utf-8")
        report = kb.sync()
        assert (report.updated, report.ok) == (1, True)

        for query, mode in [
            ("Sev-2 API error rate above 2.5%", "bm25"),
            ("Sev-2 API error rate above 2.5%", "hybrid"),
            ("what API error rate makes an incident a Sev-2?", "hybrid"),
        ]:
            top = [hit.chunk for hit in kb.search(query, k=3, mode=mode)]
            rows = [c for c in top if "| Sev-2 | A major feature" in c.text]
            assert rows, (query, mode, [c.text[:80] for c in top])
            assert "above 2.5% for 10 minutes" in rows[0].text  # the new threshold, not the old one
            assert "| Severity | Definition | Threshold |" in rows[0].text  # with the column names
            assert rows[0].doc_path == "engineering/severity.md"
            # A passage about the row, not the whole table: the row is a large part of what is quoted.
            assert len(rows[0].text) <= 600, rows[0].text
        stale = kb.search("API error rate above 5% for 10 minutes", k=20, mode="bm25")
        assert not [hit for hit in stale if "above 5% for 10 minutes" in hit.chunk.text]
    finally:
        kb.close()
