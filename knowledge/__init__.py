"""The knowledge layer: documents in folders (and, later, Slack files) kept in sync in Milvus.

Public interface used by the bot: ``KnowledgeBase`` (sync, search, status) and the value types.
"""

import os as _os

# pymilvus parses MILVUS_URI from the environment (and from ./.env) when it is first imported, and
# rejects a Milvus Lite path. threadwise owns that variable (bot.settings), so pymilvus is imported
# here, before anything else can, with the variable hidden from it.
_saved = _os.environ.get("MILVUS_URI")
_os.environ["MILVUS_URI"] = ""
try:
    import pymilvus  # noqa: F401
finally:
    if _saved is None:
        del _os.environ["MILVUS_URI"]
    else:
        _os.environ["MILVUS_URI"] = _saved
