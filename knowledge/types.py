"""The values the knowledge layer hands around: parsed documents, chunks, hits, reports.

Kept free of any I/O so every other module (and the bot) can import them cheaply.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

SearchMode = Literal["hybrid", "dense", "bm25"]
SEARCH_MODES: tuple[SearchMode, ...] = ("hybrid", "dense", "bm25")
Fusion = Literal["score", "rrf"]  # how hybrid fuses its two routes (knowledge/fusion.py)
FUSIONS: tuple[Fusion, ...] = ("score", "rrf")

# Every folder document is visible to the whole workspace. Slack files shared in a private
# conversation get ``channel:<id>``; a search always names the tokens it may see.
WORKSPACE = "workspace"


@dataclass(frozen=True)
class Section:
    """A structural piece of a document: the text under one heading, one PDF page, one CSV row."""

    text: str
    headings: tuple[str, ...] = ()
    page: int | None = None
    row: bool = False  # one row of a table (a CSV line): packed with its neighbours into row groups


@dataclass(frozen=True)
class ParsedDocument:
    title: str
    sections: list[Section]


@dataclass(frozen=True)
class Chunk:
    """One retrievable piece of a document, with everything needed to cite it precisely."""

    chunk_id: str
    doc_id: str
    doc_path: str
    title: str
    heading: str  # heading path joined with " > "
    page: int | None
    position: int  # 0-based order of the chunk in its document
    text: str
    access: str = WORKSPACE
    url: str = ""
    # A passage (knowledge/passages.py) may open with the chunk before the one that ranked: where the
    # ranked chunk's own text begins in ``text``, and whether its header line is the one ``text``
    # starts with (a passage writes a shared header line once, at the top).
    start: int = 0
    header_shared: bool = False

    @property
    def quote(self) -> str:
        """The text a quote of this chunk shows: from the chunk that ranked on, under its header line.

        For a single chunk, its text. The model reads all of ``text``."""
        if not self.header_shared:
            return self.text[self.start :]
        return self.text.partition("\n")[0] + "\n" + self.text[self.start :]

    def to_dict(self) -> dict:
        """The chunk as stored (``search --json``): where a passage's quote starts is not part of it."""
        fields = asdict(self)
        del fields["start"], fields["header_shared"]
        return fields


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float
    rank: int  # 1-based rank in the result list

    def to_dict(self) -> dict:
        return {"rank": self.rank, "score": self.score, **self.chunk.to_dict()}


@dataclass(frozen=True)
class AccessScope:
    """What one conversation may see: the access tokens a search is filtered to, inside Milvus.

    A channel's settings narrow it further, also inside Milvus: ``folders`` keeps only the folder
    documents under those top-level folders (None: all; documents with a link, such as Slack files,
    are not folder documents), and ``exclude_docs`` leaves documents out by id.
    """

    tokens: tuple[str, ...] = (WORKSPACE,)
    folders: tuple[str, ...] | None = None
    exclude_docs: tuple[str, ...] = ()

    @classmethod
    def workspace(cls) -> AccessScope:
        return cls((WORKSPACE,))

    @classmethod
    def for_channel(cls, channel_id: str, private: bool) -> AccessScope:
        return cls((WORKSPACE, f"channel:{channel_id}")) if private else cls((WORKSPACE,))


@dataclass
class Skipped:
    path: str
    reason: str


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    chunks: int = 0  # chunks written by this sync
    # One line per folder whose documents were kept although gone (more than half of it at once).
    refused_deletions: list[str] = field(default_factory=list)
    seconds: float = 0.0
    ok: bool = True
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Status:
    collection: str
    milvus_uri: str
    embedder: str
    dimension: int
    documents: int
    chunks: int
    by_status: dict[str, int]
    last_sync: dict | None
    skipped: list[Skipped]

    def to_dict(self) -> dict:
        return asdict(self)
