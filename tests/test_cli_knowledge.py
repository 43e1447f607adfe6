"""The knowledge commands as an operator runs them (``threadwise sync / search / status``), on a Milvus Lite
file and on a real Milvus server process (``MILVUS_URI=http://...``)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from bot.cli import main
from tests.corpus import DOCS, write_corpus
from tests.milvus_server import lite_and_server_uri  # noqa: F401  (every test here on both)


@pytest.fixture
def operator_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, docs_dir: Path, milvus_uri: str, collection: str
) -> Path:
    monkeypatch.chdir(tmp_path)  # no .env here
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # whatever the command configures is undone
    monkeypatch.setenv("THREADWISE_DOCS", str(docs_dir))
    monkeypatch.setenv("MILVUS_URI", milvus_uri)
    monkeypatch.setenv("MILVUS_COLLECTION", collection)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'threadwise.db'}")
    monkeypatch.delenv("THREADWISE_ALLOW_MASS_DELETE", raising=False)
    write_corpus(docs_dir)
    return docs_dir


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    said = capsys.readouterr()
    return code, said.out, said.err


def search_paths(capsys: pytest.CaptureFixture, query: str, *options: str) -> list[str]:
    code, out, err = run(capsys, "search", query, "--json", *options)
    assert code == 0, err
    return [hit["doc_path"] for hit in json.loads(out)]


def test_sync_then_search_in_every_mode(operator_env: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(capsys, "sync")
    assert code == 0, err
    assert f"added {len(DOCS)}, updated 0, deleted 0" in out
    for mode in ("hybrid", "dense", "bm25"):
        assert (
            search_paths(capsys, "Gatekeeper reset link", "--mode", mode, "-k", "3")[0]
            == "engineering/vpn.md"
        )
    # An edit replaces the old chunks (a lookup of the document's chunks, filtered by doc_id).
    vacation = operator_env / "people/vacation.md"
    vacation.write_text(vacation.read_text().replace("27 days", "31 days"))
    code, out, err = run(capsys, "sync")
    assert code == 0 and "updated 1" in out, err
    code, out, _ = run(capsys, "search", "paid annual leave days", "--json", "--mode", "bm25", "-k", "10")
    texts = [hit["text"] for hit in json.loads(out)]
    assert any("31 days" in t for t in texts) and not any("27 days" in t for t in texts)


def test_an_unmounted_folder_is_refused_reported_and_then_allowed(
    operator_env: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "sync")[0] == 0
    shutil.rmtree(operator_env)
    operator_env.mkdir()

    code, out, err = run(capsys, "sync")
    assert code == 1 and "deleted 0" in out
    assert f"refused to remove {len(DOCS)} of {len(DOCS)} indexed documents" in err
    assert "threadwise sync --allow-mass-delete" in err
    code, out, _ = run(capsys, "status")
    assert code == 0 and "refused to remove" in out and f"{len(DOCS)} indexed" in out
    code, out, _ = run(capsys, "status", "--json")
    assert json.loads(out)["last_sync"]["refused_deletions"]
    assert search_paths(capsys, "Gatekeeper reset link")[0] == "engineering/vpn.md"  # still answerable

    code, out, err = run(capsys, "sync", "--allow-mass-delete")
    assert code == 0 and f"deleted {len(DOCS)}" in out, err
    code, out, _ = run(capsys, "status", "--json")
    assert json.loads(out)["documents"] == 0 and json.loads(out)["last_sync"]["refused_deletions"] == []


def test_the_setting_allows_a_mass_deletion(
    operator_env: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "sync")[0] == 0
    shutil.rmtree(operator_env)
    operator_env.mkdir()
    monkeypatch.setenv("THREADWISE_ALLOW_MASS_DELETE", "true")
    code, out, err = run(capsys, "sync")
    assert code == 0 and f"deleted {len(DOCS)}" in out, err
