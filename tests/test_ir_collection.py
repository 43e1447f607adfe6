"""bench/convert_ir_collection.py: a SMART-format test collection becomes a labelled set eval can load."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from bench.convert_ir_collection import convert
from knowledge.evaluation import load_questions

DOCS = textwrap.dedent(
    """\
    .I 1
    .T
    experimental investigation of the aerodynamics of a
    wing in a slipstream .
    .A
    brenckman,m.
    .W
    an experimental study of a wing in a propeller slipstream was
    made in order to determine the spanwise distribution of the lift .
    .I 2
    .T
    simple shear flow past a flat plate .
    .W
    the problem of shear flow past a flat plate is considered .
    .I 3
    .W
    boundary layer in a compressible fluid .
    """
)
QUERIES = ".I 001\n.W\nwhat similarity laws must be obeyed ?\n.I 004\n.W\nshear flow over a flat plate\n"


def test_a_smart_collection_converts_to_a_labelled_set(tmp_path: Path) -> None:
    (tmp_path / "all").write_text(DOCS)
    (tmp_path / "qry").write_text(QUERIES)
    (tmp_path / "rel").write_text("1 1 2\n1 3 4\n2 2 1\n2 9 1\n")  # doc 9 does not exist
    documents, questions = convert(
        "cranfield", tmp_path / "all", tmp_path / "qry", tmp_path / "rel", "pairs", tmp_path / "out", True
    )
    folder = tmp_path / "out" / "docs"
    assert (documents, questions) == (3, 2)
    first = (folder / "1.txt").read_text()
    assert first.startswith("experimental investigation of the aerodynamics of a wing in a slipstream .\n\n")
    assert "spanwise distribution of the lift" in first and "brenckman" not in first
    loaded = load_questions(folder / "questions.jsonl", folder)
    assert [(q.question, q.relevant, q.kind) for q in loaded] == [
        ("what similarity laws must be obeyed ?", ("1.txt", "3.txt"), "cranfield"),
        ("shear flow over a flat plate", ("2.txt",), "cranfield"),
    ]


def test_trec_judgements_keep_only_relevant_pairs(tmp_path: Path) -> None:
    (tmp_path / "all").write_text(DOCS)
    (tmp_path / "qry").write_text(".I 1\n.W\nflat plate\n")
    (tmp_path / "rel").write_text("1 0 2 1\n1 0 3 0\n")
    convert("medline", tmp_path / "all", tmp_path / "qry", tmp_path / "rel", "trec", tmp_path / "out")
    lines = (tmp_path / "out" / "docs" / "questions.jsonl").read_text().splitlines()
    assert [json.loads(line)["relevant"] for line in lines] == [["2.txt"]]


def test_graded_judgements_leave_out_pairs_of_no_interest(tmp_path: Path) -> None:
    # Cranfield grades 1-4 relevant and -1 "of no interest"; the latter must not count as relevant.
    (tmp_path / "all").write_text(DOCS)
    (tmp_path / "qry").write_text(".I 001\n.W\nflat plate\n")
    (tmp_path / "rel").write_text("1 2 2\n1 3 -1\n")
    convert(
        "cranfield", tmp_path / "all", tmp_path / "qry", tmp_path / "rel", "graded", tmp_path / "out", True
    )
    lines = (tmp_path / "out" / "docs" / "questions.jsonl").read_text().splitlines()
    assert [json.loads(line)["relevant"] for line in lines] == [["2.txt"]]


def test_the_shipped_medline_collection_loads_as_a_labelled_set() -> None:
    folder = Path(__file__).resolve().parents[1] / "bench" / "data" / "medline" / "docs"
    loaded = load_questions(folder / "questions.jsonl", folder)  # refuses a relevant file that is missing
    assert len(list(folder.glob("*.txt"))) == 1033
    assert (len(loaded), sum(len(q.relevant) for q in loaded)) == (30, 696)
    assert loaded[0].question == "the crystalline lens in vertebrates, including humans."
