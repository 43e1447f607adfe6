"""The shipped sample handbook: enough documents in every format, and a question set that is true to them.

``threadwise eval`` scores retrieval against examples/handbook/questions.jsonl; a question whose expected
document is missing, or whose expected answer is not in that document, would make the score a lie.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import sys
from collections import Counter
from functools import cache
from pathlib import Path

import docx
import pytest
from pypdf import PdfReader

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HANDBOOK = EXAMPLES / "handbook"
QUESTIONS = HANDBOOK / "questions.jsonl"
FORMATS = {".md", ".html", ".pdf", ".docx", ".txt", ".csv"}
MIN_PER_KIND = {"keyword": 20, "paraphrase": 20, "multihop": 10, "unanswerable": 10}
FIELDS = {"question": str, "relevant": list, "must_contain": list, "kind": str}


def documents() -> list[Path]:
    return sorted(p for p in HANDBOOK.rglob("*") if p.is_file() and p.suffix in FORMATS)


@cache
def text_of(path: Path) -> str:
    """The document's text as a reader would see it, whitespace collapsed and lower-cased."""
    if path.suffix == ".pdf":
        raw = "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)
    elif path.suffix == ".docx":
        document = docx.Document(str(path))
        cells = (cell.text for table in document.tables for row in table.rows for cell in row.cells)
        raw = "\n".join([*(p.text for p in document.paragraphs), *cells])
    else:
        raw = path.read_text(encoding="utf-8")
    return normalise(raw)


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def questions() -> list[dict]:
    lines = QUESTIONS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_handbook_has_enough_documents_in_every_format():
    docs = documents()
    by_format = Counter(p.suffix for p in docs)
    assert len(docs) >= 40, by_format
    assert set(by_format) == FORMATS, by_format
    assert by_format[".md"] == max(by_format.values()), "most documents should be Markdown"
    for suffix in (".html", ".pdf", ".docx"):
        assert by_format[suffix] >= 5, (suffix, by_format)
    for suffix in (".txt", ".csv"):
        assert by_format[suffix] >= 4, (suffix, by_format)


def test_handbook_is_organised_by_area_and_small():
    areas = {p.relative_to(HANDBOOK).parts[0] for p in documents()}
    assert areas == {"engineering", "security", "people", "product", "meetings", "support"}
    # A README inside the folder would be indexed as if it were a handbook page.
    assert not list(HANDBOOK.rglob("README*"))
    total = sum(p.stat().st_size for p in HANDBOOK.rglob("*") if p.is_file())
    assert total < 3 * 1024 * 1024


def test_binary_documents_have_real_structure():
    for pdf in HANDBOOK.rglob("*.pdf"):
        reader = PdfReader(pdf)
        assert len(reader.pages) >= 2, f"{pdf.name} should be multi-page"
        assert reader.outline, f"{pdf.name} has no heading outline"
        assert len(text_of(pdf).split()) > 500, pdf.name
    docx_with_tables = 0
    for path in HANDBOOK.rglob("*.docx"):
        document = docx.Document(str(path))
        styles = {p.style.name for p in document.paragraphs}
        assert {"Heading 1", "Heading 2"} <= styles, f"{path.name}: {styles}"
        docx_with_tables += bool(document.tables)
    assert docx_with_tables >= 1


def test_csv_documents_are_rectangular():
    for path in HANDBOOK.rglob("*.csv"):
        rows = list(csv.reader(path.open(encoding="utf-8", newline="")))
        assert len(rows) >= 5, path.name
        assert {len(row) for row in rows} == {len(rows[0])}, f"{path.name} has ragged rows"


def test_questions_are_well_formed_with_enough_of_each_kind():
    qs = questions()
    assert len(qs) >= 60
    for n, q in enumerate(qs, start=1):
        assert set(q) == set(FIELDS), f"line {n}: fields {sorted(q)}"
        for field, kind in FIELDS.items():
            assert isinstance(q[field], kind), f"line {n}: {field} should be {kind.__name__}"
        assert q["kind"] in MIN_PER_KIND, f"line {n}: unknown kind {q['kind']!r}"
        assert q["question"].strip(), f"line {n}: empty question"
        assert all(isinstance(s, str) and s.strip() for s in q["relevant"] + q["must_contain"]), n
    counts = Counter(q["kind"] for q in qs)
    for kind, minimum in MIN_PER_KIND.items():
        assert counts[kind] >= minimum, (kind, counts)
    assert len({normalise(q["question"]) for q in qs}) == len(qs), "duplicate questions"


def test_relevant_documents_exist_and_match_the_kind():
    for q in questions():
        for rel in q["relevant"]:
            assert (HANDBOOK / rel).is_file(), f"{q['question']!r}: no document {rel}"
            assert Path(rel).suffix in FORMATS, rel
        if q["kind"] == "unanswerable":
            assert q["relevant"] == [] and q["must_contain"] == [], q["question"]
        else:
            assert q["relevant"] and q["must_contain"], q["question"]
        if q["kind"] == "multihop":
            assert len(set(q["relevant"])) >= 2, q["question"]


def test_every_expected_answer_is_in_a_relevant_document():
    missing = []
    for q in questions():
        texts = [text_of(HANDBOOK / rel) for rel in q["relevant"]]
        for expected in q["must_contain"]:
            if not any(normalise(expected) in text for text in texts):
                missing.append((q["question"], expected))
    assert not missing, missing


@pytest.fixture(scope="module")
def builder():
    pytest.importorskip("fpdf", reason="fpdf2 (dev extra) renders the PDFs")
    spec = importlib.util.spec_from_file_location("build_handbook", EXAMPLES / "build_handbook.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_committed_binaries_match_the_text_in_the_build_script(builder, tmp_path):
    """Editing the script without regenerating (or the reverse) would leave the two disagreeing."""
    written = builder.build(tmp_path)
    assert sorted(p.relative_to(tmp_path) for p in written) == sorted(
        p.relative_to(HANDBOOK) for p in HANDBOOK.rglob("*") if p.suffix in {".pdf", ".docx"}
    )
    for fresh in written:
        committed = HANDBOOK / fresh.relative_to(tmp_path)
        assert text_of(fresh) == text_of(committed), f"{committed} is stale: run examples/build_handbook.py"


def test_build_script_rejects_malformed_markup(builder):
    with pytest.raises(ValueError, match="title"):
        builder.parse("no title here\n", "x.pdf")
    with pytest.raises(ValueError, match="cells"):
        builder.parse("# T\n\n| a | b |\n| only one |\n", "x.pdf")
    with pytest.raises(ValueError, match=r"\.pdf and \.docx"):
        builder.render("x.odt", "# T\n")
