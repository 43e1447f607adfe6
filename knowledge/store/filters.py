"""Milvus filter expressions, built by one function from validated values.

Every search is filtered inside Milvus to the caller's access tokens; ``render_filter`` validates
each value against a strict pattern before it becomes part of an expression.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

# Access tokens ("workspace", "channel:C123"), document ids and chunk ids all fit this.
SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}$")
_FILTER_FIELDS = frozenset({"access", "doc_id", "chunk_id"})
_FILTER_OPS = frozenset({"==", "in", "not in"})


def check_value(field: str, value: object) -> str:
    """The value itself, if it may appear in a filter; ValueError naming the field otherwise."""
    if not isinstance(value, str) or not SAFE_VALUE.fullmatch(value):
        raise ValueError(f"invalid {field} {value!r}: expected 1-200 characters of A-Z a-z 0-9 _ . : -")
    return value


def literal(value: str) -> str:
    # Values are already restricted to SAFE_VALUE; escaping anyway keeps this function safe on its own.
    return json.dumps(value, ensure_ascii=True)


def render_filter(
    conditions: Sequence[tuple[str, str, str | Sequence[str]]], *, templates: bool
) -> tuple[str, dict[str, Any]]:
    """Build a Milvus boolean expression from ``(field, op, value)`` conditions joined by ``and``.

    Every value is validated (``check_value``). With ``templates`` (a Milvus server) the values travel
    as expression-template parameters (``access in {p0}`` + ``{"p0": [...]}``); Milvus Lite does not
    support templates, so there they are rendered as escaped string literals.
    """
    parts: list[str] = []
    params: dict[str, Any] = {}
    for field, op, value in conditions:
        if field not in _FILTER_FIELDS or op not in _FILTER_OPS:
            raise ValueError(f"unsupported filter condition {field} {op}")
        if op == "==":
            if not isinstance(value, str):
                raise ValueError(f"{field} == needs one value")
            rendered: Any = check_value(field, value)
        else:
            if isinstance(value, str):
                raise ValueError(f"{field} {op} needs a list of values")
            rendered = [check_value(field, item) for item in value]
        if templates:
            name = f"p{len(params)}"
            params[name] = rendered
            parts.append(f"{field} {op} {{{name}}}")
        elif op == "==":
            parts.append(f"{field} == {literal(rendered)}")
        else:
            parts.append(f"{field} {op} [{', '.join(literal(item) for item in rendered)}]")
    return " and ".join(parts), params
