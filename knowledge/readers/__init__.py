"""One reader per format. ``read_document`` picks one by suffix and returns a ParsedDocument.

Interface (owned by the readers module):
    SUPPORTED_SUFFIXES: frozenset[str]
    read_document(path: Path, max_bytes: int) -> ParsedDocument   # raises UnreadableDocument(reason)
    read_bytes(data: bytes, name: str) -> ParsedDocument            # same, for bytes (Slack files)
"""
