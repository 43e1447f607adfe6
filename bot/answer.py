"""An answer as a value: what the team produced, what it cites, and what it cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Outcome = Literal["answered", "not_found", "search_only", "error"]


@dataclass(frozen=True)
class Source:
    n: int  # the [n] marker in the text
    doc: str  # document path (or Slack file name)
    title: str
    heading: str
    page: int | None
    snippet: str
    chunk_id: str
    url: str = ""
    updated: str = ""  # the document's last change, ISO 8601 UTC ("" when unknown)


@dataclass
class Answer:
    text: str  # Markdown with [n] markers; every marker has a Source
    sources: list[Source]
    conversation: str
    outcome: Outcome = "answered"
    stripped_citations: int = 0
    searched: list[str] = field(default_factory=list)  # the queries the analyst ran
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, and "total"
    usage: dict[str, int] = field(default_factory=dict)  # input_tokens, output_tokens, total_tokens
    error: str | None = None
    # Every chunk the searches returned, best first per search: n, query, rank, score, cited, doc, ...
    retrieved: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["answer"] = data.pop("text")
        return data
