"""The knowledge layer: documents in folders (and, later, Slack files) kept in sync in Milvus.

Public interface used by the bot: ``KnowledgeBase`` (sync, search, status) and the value types.
"""
