"""Convert a classic IR test collection (SMART format: MEDLINE, CISI, CACM, Cranfield, NPL-style files)
into the project's labelled-set format, so bench_quality.py and ``threadwise eval`` can score it.

    .venv/bin/python bench/convert_ir_collection.py --name medline \\
        --docs MED.ALL --queries MED.QRY --qrels MED.REL --qrels-format trec --out /tmp/medline
    .venv/bin/python bench/bench_quality.py --only references --docs /tmp/medline/docs

Writes ``OUT/docs/<id>.txt`` (the title on the first line, then the text) and
``OUT/docs/questions.jsonl`` (one ``{"question", "relevant", "kind"}`` per query with at least one
relevant document). MEDLINE's conversion ships in bench/data/medline/docs; the source files do not.

Records start with ``.I <id>``; the text is the ``.T`` (title) and ``.W`` (words) fields, other fields
(authors, bibliography, cross-references) are left out. Relevance judgements come as
``--qrels-format pairs`` (``qid docid ...``, every pair relevant: CISI, whose third and fourth columns
are always 0), ``graded`` (``qid docid grade``, grade <= 0 not relevant: Cranfield, whose grade -1 is
"of no interest") or ``trec`` (``qid iter docid rel``: MEDLINE). Cranfield's query file numbers its
queries with gaps while its judgements number them 1..225 in file order: pass ``--renumber-queries``.

The three collections were taken from the Glasgow IR group's tarballs as kept in a public repository
(bench/data/medline/README.md has the commands); MEDLINE's conversion is in bench/data/medline/.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

_FIELD = re.compile(r"^\.([A-Z])(?:\s+(.*))?$")
TEXT_FIELDS = ("T", "W")


def read_records(path: Path) -> dict[str, dict[str, str]]:
    """``{id: {field letter: text}}`` from a SMART-format file, in file order."""
    records: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    field = ""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _FIELD.match(line.rstrip())
        if match and match.group(1) == "I":
            record_id = (match.group(2) or "").strip()
            if not record_id:
                raise ValueError(f"{path}: a .I line without an id")
            current = records[str(int(record_id)) if record_id.isdigit() else record_id] = {}
            field = ""
        elif match and current is not None:
            field = match.group(1)
            current.setdefault(field, []).extend([match.group(2)] if match.group(2) else [])
        elif current is not None and field:
            current[field].append(line)
    return {
        record_id: {name: " ".join(" ".join(lines).split()) for name, lines in fields.items()}
        for record_id, fields in records.items()
    }


def read_qrels(path: Path, fmt: str) -> dict[str, set[str]]:
    judged: dict[str, set[str]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if fmt == "trec":
            if len(parts) < 4:
                raise ValueError(f"{path} line {number}: expected 'qid iter docid rel'")
            qid, doc, relevant = parts[0], parts[2], float(parts[3]) > 0
        elif fmt == "graded":
            if len(parts) < 3:
                raise ValueError(f"{path} line {number}: expected 'qid docid grade'")
            qid, doc, relevant = parts[0], parts[1], float(parts[2]) > 0
        else:
            if len(parts) < 2:
                raise ValueError(f"{path} line {number}: expected 'qid docid ...'")
            qid, doc, relevant = parts[0], parts[1], True
        if relevant:
            judged.setdefault(str(int(qid)), set()).add(str(int(doc)))
    return judged


def convert(
    name: str, docs: Path, queries: Path, qrels: Path, fmt: str, out: Path, renumber: bool = False
) -> tuple[int, int]:
    """Write the documents and the labelled set; returns (documents, questions)."""
    documents = read_records(docs)
    asked = read_records(queries)
    if renumber:
        asked = {str(n): fields for n, fields in enumerate(asked.values(), start=1)}
    judged = read_qrels(qrels, fmt)
    folder = out / "docs"
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for doc_id, fields in documents.items():
        title = fields.get("T", "").strip()
        body = fields.get("W", "").strip()
        if not (title or body):
            continue
        (folder / f"{doc_id}.txt").write_text(
            f"{title}\n\n{body}\n" if title else f"{body}\n", encoding="utf-8"
        )
        written += 1
    lines = []
    for qid, fields in asked.items():
        question = " ".join(fields.get(f, "") for f in TEXT_FIELDS).strip()
        relevant = sorted(
            (f"{doc}.txt" for doc in judged.get(qid, ()) if (folder / f"{doc}.txt").is_file()),
            key=lambda path: int(path.split(".")[0]),
        )
        if question and relevant:
            lines.append(json.dumps({"question": question, "relevant": relevant, "kind": name}))
    (folder / "questions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return written, len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the collection's name, used as each question's kind")
    parser.add_argument("--docs", type=Path, required=True, help="the documents file (e.g. MED.ALL)")
    parser.add_argument("--queries", type=Path, required=True, help="the queries file (e.g. MED.QRY)")
    parser.add_argument("--qrels", type=Path, required=True, help="the relevance judgements (e.g. MED.REL)")
    parser.add_argument("--qrels-format", choices=("pairs", "graded", "trec"), default="pairs")
    parser.add_argument("--renumber-queries", action="store_true", help="number queries 1..n in file order")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    documents, questions = convert(
        args.name, args.docs, args.queries, args.qrels, args.qrels_format, args.out, args.renumber_queries
    )
    print(f"{documents} documents and {questions} judged questions in {args.out / 'docs'}")


if __name__ == "__main__":
    main()
