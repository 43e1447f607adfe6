"""Errors the knowledge layer raises with a message a person can act on."""


class KnowledgeError(Exception):
    """Base class: the message is meant to be shown as is, on one line."""


class StoreUnavailable(KnowledgeError):
    """Milvus cannot be reached or opened (e.g. a Milvus Lite file held by another process)."""


class EmbedderMismatch(KnowledgeError):
    """The collection was built with another embedding model or dimension."""


class EmbeddingError(KnowledgeError):
    """The embedding model failed after its retries."""


class SyncBusy(KnowledgeError):
    """Another sync holds the lock."""


class UnreadableDocument(Exception):
    """A document was skipped; ``reason`` is shown in the sync summary and in status."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
