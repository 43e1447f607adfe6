"""Milvus filter expressions, built by one function from validated values.

Every search is filtered inside Milvus to the caller's access tokens; ``render_filter`` validates
each value against a strict pattern before it becomes part of an expression.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

# Access tokens ("workspace", "channel:C123"), document ids and chunk ids all fit this.
SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}$")
_FILTER_FIELDS = frozenset({"access", "doc_id", "chunk_id", "folder"})
_FILTER_OPS = frozenset({"==", "in", "not in"})
# A top-level folder's name, as a channel's settings name it (no quotes, backslashes or control characters).
SAFE_FOLDER = re.compile(r"^[\w .,&()+@#'%\-]{1,200}$")


def check_value(field: str, value: object) -> str:
    """The value itself, if it may appear in a filter; ValueError naming the field otherwise."""
    if not isinstance(value, str) or not SAFE_VALUE.fullmatch(value):
        raise ValueError(f"invalid {field} {value!r}: expected 1-200 characters of A-Z a-z 0-9 _ . : -")
    return value


def folder_condition(folders: Sequence[str]) -> str:
    """Folder documents (the ones without a link: Slack files and saved threads link to Slack) under
    one of the top-level ``folders``, as LIKE prefixes with ``\\ % _`` escaped; every document with a
    link passes."""
    patterns = []
    for name in folders:
        if not isinstance(name, str) or not SAFE_FOLDER.fullmatch(name):
            raise ValueError(f"invalid folder {name!r}")
        escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        patterns.append(f"doc_path like {literal(escaped + '/%')}")
    return "(" + " or ".join(['url != ""', *patterns]) + ")"


def literal(value: str) -> str:
    # Values are already restricted to SAFE_VALUE; escaping anyway keeps this function safe on its own.
    return json.dumps(value, ensure_ascii=True)


def render_filter(conditions: Sequence[tuple[str, str, str | Sequence[str]]]) -> str:
    """Build a Milvus boolean expression from ``(field, op, value)`` conditions joined by ``and``.

    Every value is validated (``check_value``) and rendered as an escaped string literal: one form for
    every Milvus. Milvus Lite and Milvus before 2.5 take no expression templates, and a server given
    template placeholders rejects them (``unexpected character '{'``).
    """
    parts: list[str] = []
    for field, op, value in conditions:
        if field not in _FILTER_FIELDS or op not in _FILTER_OPS:
            raise ValueError(f"unsupported filter condition {field} {op}")
        if field == "folder":  # a channel's folders (``AccessScope.folders``)
            if op != "in" or isinstance(value, str):
                raise ValueError("folder takes `in` and a list of folder names")
            parts.append(folder_condition(value))
            continue
        if op == "==":
            if not isinstance(value, str):
                raise ValueError(f"{field} == needs one value")
            parts.append(f"{field} == {literal(check_value(field, value))}")
        else:
            if isinstance(value, str):
                raise ValueError(f"{field} {op} needs a list of values")
            items = ", ".join(literal(check_value(field, item)) for item in value)
            parts.append(f"{field} {op} [{items}]")
    return " and ".join(parts)
