"""Builders for real document files (PDF, DOCX, encrypted and scanned PDFs), made at test time.

Nothing binary is committed: each test writes the files it reads into its own tmp directory.
fpdf2's core fonts are Latin-1 only, so PDF text here stays ASCII.
"""

from __future__ import annotations

import io
from pathlib import Path

from docx import Document
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter


def pdf_bytes(pages: list[str], *, title: str | None = None) -> bytes:
    """A PDF with a text layer: one page per string, lines split on newlines."""
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_font("helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def write_pdf(path: Path, pages: list[str], *, title: str | None = None) -> Path:
    path.write_bytes(pdf_bytes(pages, title=title))
    return path


def write_scanned_pdf(path: Path, pages: int = 2) -> Path:
    """What a scanner makes: pages with marks on them but no text layer."""
    pdf = FPDF()
    for _ in range(pages):
        pdf.add_page()
        pdf.set_fill_color(40, 40, 40)
        for row in range(12):
            pdf.rect(20, 20 + row * 10, 150 - row * 7, 4, style="F")
    path.write_bytes(bytes(pdf.output()))
    return path


def write_encrypted_pdf(path: Path, pages: list[str], *, user_password: str = "s3cret") -> Path:
    """An AES-256 encrypted PDF; ``user_password=""`` gives an owner-password-only PDF anyone can open."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes(pages))))
    writer.encrypt(user_password=user_password, owner_password="owner-pw", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    path.write_bytes(buffer.getvalue())
    return path


def write_docx(path: Path, blocks: list[tuple[str, object]], *, core_title: str | None = None) -> Path:
    """A DOCX from ``(kind, content)`` blocks.

    kinds: "title" (Title style), "h1".."h6" (Heading n), "p" (a paragraph), "table" (rows of
    cells; a cell given as None is merged into the cell on its left).
    """
    document = Document()
    if core_title:
        document.core_properties.title = core_title
    for kind, content in blocks:
        if kind == "title":
            document.add_heading(str(content), level=0)
        elif kind.startswith("h"):
            document.add_heading(str(content), level=int(kind[1:]))
        elif kind == "p":
            document.add_paragraph(str(content))
        elif kind == "table":
            rows = list(content)  # type: ignore[call-overload]
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    if value is None:
                        table.cell(r, c - 1).merge(table.cell(r, c))
                    else:
                        table.cell(r, c).text = str(value)
        else:
            raise ValueError(f"unknown block kind {kind!r}")
    document.save(str(path))
    return path
