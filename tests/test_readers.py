"""Each format read from a real file built at test time, and every way a document can be unreadable."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

import pytest

from knowledge.errors import UnreadableDocument
from knowledge.readers import SUPPORTED_SUFFIXES, read_bytes, read_document
from knowledge.readers import csv as csv_reader
from knowledge.types import ParsedDocument, Section
from tests.fixtures_docs import pdf_bytes, write_docx, write_encrypted_pdf, write_pdf, write_scanned_pdf

MB = 1024 * 1024
LIMIT = 50 * MB


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    return path


def unreadable(path: Path, max_bytes: int = LIMIT) -> str:
    with pytest.raises(UnreadableDocument) as caught:
        read_document(path, max_bytes)
    return caught.value.reason


def by_heading(doc: ParsedDocument) -> dict[tuple[str, ...], str]:
    return {section.headings: section.text for section in doc.sections}


def test_supported_suffixes() -> None:
    expected = {".md", ".markdown", ".txt", ".text", ".html", ".htm", ".pdf", ".docx", ".csv"}
    assert expected == SUPPORTED_SUFFIXES


# Markdown

RUNBOOK = """---
title: Front matter title
owner: sre
---
Read this before an incident.

# Runbooks

## Database

The primary is db-1.

### Failover

1. Promote the replica:

```bash
# this comment is code, not a heading
pg_ctl promote -D /var/lib/postgresql
```

| host | role    |
|------|---------|
| db-1 | primary |

Cache layer
-----------

Redis runs on cache-1.

> # A quoted heading is text
"""


def test_markdown_sections_follow_the_heading_path(tmp_path: Path) -> None:
    doc = read_document(write(tmp_path / "runbook.md", RUNBOOK), LIMIT)

    assert doc.title == "Runbooks"
    assert [s.headings for s in doc.sections] == [
        (),
        ("Runbooks", "Database"),
        ("Runbooks", "Database", "Failover"),
        ("Runbooks", "Cache layer"),  # setext h2 closes the h3 and the h2 before it
    ]
    sections = by_heading(doc)
    assert sections[()] == "Read this before an incident."
    failover = sections[("Runbooks", "Database", "Failover")]
    assert "# this comment is code, not a heading" in failover
    assert "pg_ctl promote -D /var/lib/postgresql" in failover
    assert "| db-1 | primary |" in failover
    assert sections[("Runbooks", "Cache layer")] == "Redis runs on cache-1.\n\n> # A quoted heading is text"
    assert not any("owner: sre" in s.text or "Front matter" in s.text for s in doc.sections)


def test_markdown_title_falls_back_to_front_matter_then_filename(tmp_path: Path) -> None:
    with_front_matter = write(tmp_path / "a.md", "---\ntitle: On-call guide\n---\n## Paging\nCall twice.\n")
    assert read_document(with_front_matter, LIMIT).title == "On-call guide"

    bare = write(tmp_path / "team_on-call_notes.markdown", "## Paging\nCall twice.\n")
    doc = read_document(bare, LIMIT)
    assert doc.title == "Team on call notes"
    assert doc.sections == [Section("Call twice.", ("Paging",))]


def test_markdown_with_broken_front_matter_still_reads(tmp_path: Path) -> None:
    doc = read_document(write(tmp_path / "x.md", "---\ntitle: [unclosed\n---\nBody text.\n"), LIMIT)
    assert doc.sections == [Section("Body text.")]
    assert doc.title == "X"


# Plain text


def test_text_is_one_section_with_a_title_line(tmp_path: Path) -> None:
    raw = "Expense policy\r\n\r\nMeals\tare\xa0 covered.\x00\r\n\r\n\r\n\r\nTaxi too.\n"
    path = write(tmp_path / "expenses.txt", raw)
    doc = read_document(path, LIMIT)
    assert doc.title == "Expense policy"
    assert doc.sections == [Section("Expense policy\n\nMeals are covered.\n\nTaxi too.")]


def test_text_title_is_the_filename_when_the_first_line_is_prose(tmp_path: Path) -> None:
    doc = read_document(write(tmp_path / "standup-notes.txt", "We met at ten\nNothing else\n"), LIMIT)
    assert doc.title == "Standup notes"  # a first line is a title only when a blank line follows
    doc = read_document(write(tmp_path / "standup-notes.txt", "We met at ten.\n\nNothing else.\n"), LIMIT)
    assert doc.title == "Standup notes"  # nor when it is a sentence


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("cp1252", "Café au lait, crème brûlée: 5 €"),
        ("utf-16", "Größe: 5 cm, Straße"),
        ("utf-8-sig", "Naïve résumé"),
        ("cp1251", "Привет, как дела? Это тестовый файл с кириллицей, он должен читаться правильно."),
    ],
)
def test_text_encodings_are_detected(tmp_path: Path, encoding: str, text: str) -> None:
    doc = read_document(write(tmp_path / "notes.txt", text, encoding), LIMIT)
    assert doc.sections[0].text == text


# HTML

WIKI = """<!doctype html>
<html><head><title>Ops Wiki</title><meta charset="iso-8859-1">
<style>.secret-style { color: red }</style><script>var secretScript = 1;</script></head>
<body>
<nav><a href="/">Home</a> <a href="/x">NavLinkText</a></nav>
<p>Start   here
   when paged.</p>
<!-- hidden comment -->
<h1>Runbooks</h1>
<h2>Database</h2><p>The primary is <b>db-1</b>.</p>
<h3>Failover</h3>
<ol><li>Promote the replica</li><li>Repoint DNS</li></ol>
<table><tr><th>host</th><th>role</th></tr><tr><td>db-1</td><td>primary</td></tr></table>
<h2>Caf\xe9</h2><p>Cr\xe8me br\xfbl\xe9e on Fridays.</p>
<footer>FooterText 2024</footer>
</body></html>"""


def test_html_sections_and_dropped_chrome(tmp_path: Path) -> None:
    doc = read_document(write(tmp_path / "wiki.html", WIKI, "latin-1"), LIMIT)

    assert doc.title == "Ops Wiki"
    assert by_heading(doc) == {
        (): "Start here when paged.",
        ("Runbooks", "Database"): "The primary is db-1.",
        ("Runbooks", "Database", "Failover"): (
            "Promote the replica\nRepoint DNS\n\nhost | role\ndb-1 | primary"
        ),
        ("Runbooks", "Café"): "Crème brûlée on Fridays.",
    }
    everything = " ".join(s.text for s in doc.sections)
    for dropped in ("secretScript", "secret-style", "NavLinkText", "FooterText", "hidden comment"):
        assert dropped not in everything


def test_html_title_falls_back_to_the_first_h1(tmp_path: Path) -> None:
    doc = read_document(write(tmp_path / "p.htm", "<h1>Deploys</h1><p>Mondays only.</p>"), LIMIT)
    assert doc.title == "Deploys"
    assert doc.sections == [Section("Mondays only.", ("Deploys",))]


def test_deeply_nested_html_is_read(tmp_path: Path) -> None:
    nested = "<div>" * 5000 + "<p>Deep text.</p>" + "</div>" * 5000
    assert read_document(write(tmp_path / "deep.html", nested), LIMIT).sections == [Section("Deep text.")]


# PDF


def test_pdf_has_one_section_per_page(tmp_path: Path) -> None:
    pages = [
        "Pump manual\n\nInstall the pump upright.",
        "",
        "Bleed the air before use.",
        "Warranty: 2 years.",
    ]
    doc = read_document(write_pdf(tmp_path / "pump.pdf", pages, title="Pump Manual 3000"), LIMIT)

    assert doc.title == "Pump Manual 3000"
    assert [s.page for s in doc.sections] == [1, 3, 4]  # the blank page 2 has no text
    assert "Install the pump upright." in doc.sections[0].text
    assert doc.sections[1].text == "Bleed the air before use."
    assert all(s.headings == () for s in doc.sections)


def test_pdf_title_from_first_line_without_metadata(tmp_path: Path) -> None:
    doc = read_document(write_pdf(tmp_path / "x.pdf", ["Quarterly report\nRevenue grew."]), LIMIT)
    assert doc.title == "Quarterly report"


def test_pdf_protected_only_by_an_owner_password_is_read(tmp_path: Path) -> None:
    path = write_encrypted_pdf(tmp_path / "o.pdf", ["Open to all readers."], user_password="")
    doc = read_document(path, LIMIT)
    assert doc.sections == [Section("Open to all readers.", page=1)]


# DOCX


def test_docx_sections_by_heading_styles_and_tables(tmp_path: Path) -> None:
    path = write_docx(
        tmp_path / "handbook.docx",
        [
            ("title", "Employee Handbook"),
            ("p", "Welcome aboard."),
            ("h1", "Benefits"),
            ("p", "Lunch is paid."),
            ("h2", "Dental"),
            ("p", "Dental is covered."),
            ("table", [["Plan", "Cost"], ["Basic", "10 EUR"], ["Plus", "20 EUR"], ["Gold: ask HR", None]]),
            ("p", "Ask HR for details."),
            ("h1", "Leave"),
            ("p", "27 days a year."),
        ],
    )
    doc = read_document(path, LIMIT)

    assert doc.title == "Employee Handbook"
    assert by_heading(doc) == {
        (): "Welcome aboard.",
        ("Benefits",): "Lunch is paid.",
        ("Benefits", "Dental"): (
            "Dental is covered.\n\n"
            "Plan | Cost\nBasic | 10 EUR\nPlus | 20 EUR\nGold: ask HR\n\n"  # the merged cell once
            "Ask HR for details."
        ),
        ("Leave",): "27 days a year.",
    }


def test_docx_title_falls_back_to_core_properties(tmp_path: Path) -> None:
    path = write_docx(tmp_path / "d.docx", [("h1", "Scope"), ("p", "All staff.")], core_title="Travel Policy")
    assert read_document(path, LIMIT).title == "Travel Policy"


# CSV


def test_csv_rows_keep_their_column_names(tmp_path: Path) -> None:
    rows = (
        'name;extension;notes\r\nBob;4417;"likes; semicolons"\r\n\r\n;;\r\n'
        "Alice;4418;café owner\r\nCarol;4419;x;extra\r\nDan;;\r\n"
    )
    doc = read_document(write(tmp_path / "phone_list.csv", rows, "cp1252"), LIMIT)

    assert doc.title == "Phone list"
    assert [s.text for s in doc.sections] == [
        "name: Bob; extension: 4417; notes: likes; semicolons",
        "name: Alice; extension: 4418; notes: café owner",
        "name: Carol; extension: 4419; notes: x; column 4: extra",
        "name: Dan",  # empty cells are left out
    ]


def test_csv_single_column_falls_back_to_commas(tmp_path: Path) -> None:
    doc = read_document(write(tmp_path / "hosts.csv", "host\ndb-1\ndb-2\n"), LIMIT)
    assert [s.text for s in doc.sections] == ["host: db-1", "host: db-2"]


def test_csv_with_absurdly_many_rows_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_reader, "MAX_ROWS", 3)
    path = write(tmp_path / "export.csv", "id\n1\n2\n3\n4\n")
    assert unreadable(path) == "too many rows: more than 3"


# Bytes in memory (Slack files)


def test_read_bytes_matches_read_document(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "a.pdf", ["Alpha page.", "Beta page."])
    assert read_bytes(path.read_bytes(), "Uploads/A.PDF") == read_document(path, LIMIT)


# Unreadable documents: every case has a reason a person can act on


def png_bytes() -> bytes:
    rng = random.Random(7)
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(rng.randrange(256) for _ in range(4000))


def high_bytes() -> bytes:
    """Bytes above 0x7F in no pattern any encoding makes sense of."""
    return bytes((i * 37) % 128 + 128 for i in range(3000))


def docx_bytes(tmp_path: Path) -> bytes:
    return write_docx(tmp_path / "ok.docx", [("h1", "A"), ("p", "Some text.")]).read_bytes()


CASES = {
    "unsupported": ("slides.xyz", lambda tmp: b"whatever", "unsupported format .xyz"),
    "no extension": ("Makefile", lambda tmp: b"all:", "unsupported format (no extension)"),
    "empty": ("empty.md", lambda tmp: b"", "empty file"),
    "binary behind .txt": ("photo.txt", lambda tmp: png_bytes(), "binary content in a text file"),
    "binary behind .md": ("photo.md", lambda tmp: png_bytes(), "binary content in a text file"),
    "binary behind .csv": ("data.csv", lambda tmp: png_bytes(), "binary content in a text file"),
    "binary behind .html": ("page.html", lambda tmp: png_bytes(), "binary content in a text file"),
    "undecodable": ("notes.txt", lambda tmp: high_bytes(), "undecodable text"),
    "truncated PDF": ("cut.pdf", lambda tmp: pdf_bytes(["Some text."] * 3)[:1500], "corrupt PDF: "),
    "not a PDF": ("fake.pdf", lambda tmp: b"this is plain text, not a PDF", "corrupt PDF: "),
    "truncated DOCX": ("cut.docx", lambda tmp: docx_bytes(tmp)[:2000], "corrupt DOCX: "),
    "not a DOCX": ("fake.docx", lambda tmp: b"plain text in a docx", "corrupt DOCX: "),
    "whitespace text": ("blank.txt", lambda tmp: b" \n\t\n  \n", "no text found"),
    "headings only markdown": ("h.md", lambda tmp: b"# Title\n\n## Part\n", "no text found"),
    "CSV cell over the csv module's limit": (
        "big-cell.csv",
        lambda tmp: b'name,notes\nBob,"' + b"x" * 200_000 + b'"\n',
        "malformed CSV: line 2: field larger than field limit",
    ),
    "header-only CSV": ("h.csv", lambda tmp: b"name,phone\n", "no text found"),
    "script-only HTML": ("s.html", lambda tmp: b"<script>alert(1)</script><p>  </p>", "no text found"),
    "empty DOCX": ("e.docx", lambda tmp: write_docx(tmp / "e0.docx", []).read_bytes(), "no text found"),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_unreadable_documents_say_why(tmp_path: Path, case) -> None:
    name, build, reason = case
    path = write(tmp_path / name, build(tmp_path))

    assert unreadable(path).startswith(reason)
    with pytest.raises(UnreadableDocument) as caught:
        read_bytes(path.read_bytes(), name)
    assert caught.value.reason.startswith(reason)


def test_encrypted_pdf(tmp_path: Path) -> None:
    assert unreadable(write_encrypted_pdf(tmp_path / "secret.pdf", ["Payroll."])) == "encrypted PDF"


def test_scanned_pdf_has_no_text(tmp_path: Path) -> None:
    assert unreadable(write_scanned_pdf(tmp_path / "scan.pdf")) == "no text found"


def test_too_large_is_refused_with_sizes(tmp_path: Path) -> None:
    path = write(tmp_path / "big.txt", b"word " * int(2.5 * MB / 5))
    assert unreadable(path, max_bytes=2 * MB) == "too large: 2.5 MB > 2 MB limit"
    with pytest.raises(UnreadableDocument, match=r"^too large: 2\.5 MB > 2 MB limit$"):
        read_bytes(path.read_bytes(), "big.txt", max_bytes=2 * MB)
    assert read_document(path, max_bytes=3 * MB).sections  # the same file under a larger limit


def test_missing_file(tmp_path: Path) -> None:
    assert unreadable(tmp_path / "gone.md") == "cannot read file: No such file or directory"


def test_damaged_files_never_leak_a_parser_exception(tmp_path: Path) -> None:
    """Flip bytes all over valid PDFs and DOCX files: each read gives a document or a reason."""
    originals = {"x.pdf": pdf_bytes(["First page.", "Second page."]), "x.docx": docx_bytes(tmp_path)}
    rng = random.Random(1234)
    outcomes = []
    for name, data in originals.items():
        for _ in range(40):
            damaged = bytearray(data)
            for _ in range(rng.randint(1, 12)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            try:
                outcomes.append(read_bytes(bytes(damaged), name))
            except UnreadableDocument as exc:
                assert exc.reason and "\n" not in exc.reason
                outcomes.append(exc.reason)
    assert any(isinstance(o, str) for o in outcomes)  # some damage was noticed


def test_docx_zip_without_a_document_part(tmp_path: Path) -> None:
    path = tmp_path / "notdocx.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")
    assert unreadable(path).startswith("corrupt DOCX: ")
