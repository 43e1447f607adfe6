"""Slack's limits on what an app may send: text lengths, Block Kit rules, streaming chunks.

Pure validators shared by the Web API, the response_url endpoints and anything else that needs to
say why Slack would refuse a message. Numbers are Slack's documented limits; the ``[ERROR] ...
[json-pointer:...]`` lines imitate the ``response_metadata.messages`` Slack returns with
``invalid_blocks``.

One assumption: Slack documents 12,000 characters for ``markdown_text`` but no error code for
exceeding it; ``msg_too_long`` is used here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from localslack.workspace import SlackError

# Slack's documented limits.
MAX_TEXT = 40_000
MAX_MARKDOWN_TEXT = 12_000  # markdown_text arguments and streamed markdown chunks
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3_000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2_000
MAX_HEADER_TEXT = 150
MAX_MARKDOWN_BLOCKS_TEXT = 12_000  # cumulative over a message's markdown blocks
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_ID_LENGTH = 255  # block_id, action_id
MAX_VALUE = 2_000
MAX_ATTACHMENTS = 100
MAX_VIEW_BLOCKS = 100

BLOCK_TYPES = {
    "actions",
    "context",
    "context_actions",
    "divider",
    "file",
    "header",
    "image",
    "input",
    "markdown",
    "rich_text",
    "section",
    "table",
    "video",
}
CHUNK_TYPES = {"markdown_text", "task_update", "plan_update", "blocks"}


def check_chunks(chunks: list[Any]) -> None:
    """Raise the SlackError Slack answers for bad streaming chunks."""
    for i, chunk in enumerate(chunks):
        if not isinstance(chunk, dict) or chunk.get("type") not in CHUNK_TYPES:
            raise SlackError("invalid_chunks", f"[ERROR] unknown chunk type [json-pointer:/chunks/{i}/type]")
        if chunk["type"] == "markdown_text":
            if not isinstance(chunk.get("text"), str):
                raise SlackError("invalid_chunks", f"[ERROR] missing text [json-pointer:/chunks/{i}/text]")
            if len(chunk["text"]) > MAX_MARKDOWN_TEXT:
                raise SlackError(
                    "msg_too_long", f"[ERROR] markdown text is limited to {MAX_MARKDOWN_TEXT} characters"
                )
        if chunk["type"] == "blocks":
            check_blocks(chunk.get("blocks"), max_blocks_error="msg_blocks_too_many")


def check_blocks(blocks: Any, *, max_blocks_error: str = "invalid_blocks") -> None:
    """Raise the SlackError Slack answers for these blocks (too many, malformed, over a limit)."""
    if not isinstance(blocks, list):
        raise SlackError("invalid_blocks_format", "[ERROR] blocks must be an array")
    if len(blocks) > MAX_BLOCKS:
        raise SlackError(
            max_blocks_error, f"[ERROR] no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]"
        )
    problems = block_problems(blocks)
    if problems:
        raise SlackError("invalid_blocks", *problems)


def block_problems(blocks: list[Any], *, where: str = "/blocks") -> list[str]:
    """Why Slack would refuse these blocks, as ``[ERROR] ... [json-pointer:...]`` lines (empty if fine)."""
    problems: list[str] = []
    seen_ids: set[str] = set()
    markdown_total = 0

    def bad(pointer: str, why: str) -> None:
        problems.append(f"[ERROR] {why} [json-pointer:{pointer}]")

    def text_object(obj: Any, pointer: str, limit: int, *, plain_only: bool = False) -> None:
        if not isinstance(obj, dict) or obj.get("type") not in (
            ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        ):
            bad(pointer, "must be a text object" + (" of type plain_text" if plain_only else ""))
            return
        value = obj.get("text")
        if not isinstance(value, str) or not value:
            bad(f"{pointer}/text", "must be more than 0 characters")
        elif len(value) > limit:
            bad(f"{pointer}/text", f"must be less than {limit + 1} characters")

    for i, block in enumerate(blocks):
        at = f"{where}/{i}"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            bad(f"{at}/type", "unknown or missing block type")
            continue
        kind = block["type"]
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or len(block_id) > MAX_ID_LENGTH:
                bad(f"{at}/block_id", f"must be a string of at most {MAX_ID_LENGTH} characters")
            elif block_id in seen_ids:
                bad(f"{at}/block_id", "duplicate block_id")
            else:
                seen_ids.add(block_id)
        if kind == "section":
            if "text" not in block and "fields" not in block:
                bad(at, "a section needs text or fields")
            if "text" in block:
                text_object(block["text"], f"{at}/text", MAX_SECTION_TEXT)
            fields = block.get("fields")
            if fields is not None:
                if not isinstance(fields, list) or len(fields) > MAX_SECTION_FIELDS:
                    bad(f"{at}/fields", f"no more than {MAX_SECTION_FIELDS} items allowed")
                else:
                    for j, item in enumerate(fields):
                        text_object(item, f"{at}/fields/{j}", MAX_FIELD_TEXT)
        elif kind == "header":
            text_object(block.get("text"), f"{at}/text", MAX_HEADER_TEXT, plain_only=True)
        elif kind == "markdown":
            value = block.get("text")
            if not isinstance(value, str) or not value:
                bad(f"{at}/text", "must be more than 0 characters")
            else:
                markdown_total += len(value)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
                bad(f"{at}/elements", f"must have 1 to {MAX_CONTEXT_ELEMENTS} items")
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_ACTIONS_ELEMENTS:
                bad(f"{at}/elements", f"must have 1 to {MAX_ACTIONS_ELEMENTS} items")
            else:
                for j, element in enumerate(elements):
                    _check_element(element, f"{at}/elements/{j}", bad, text_object)
        elif kind == "image":
            if not (block.get("image_url") or block.get("slack_file")):
                bad(f"{at}/image_url", "an image needs image_url or slack_file")
            if not isinstance(block.get("alt_text"), str) or not block["alt_text"]:
                bad(f"{at}/alt_text", "must be more than 0 characters")
        elif kind == "rich_text" and not isinstance(block.get("elements"), list):
            bad(f"{at}/elements", "must be an array")
        if isinstance(block.get("accessory"), dict):
            _check_element(block["accessory"], f"{at}/accessory", bad, text_object)
    if markdown_total > MAX_MARKDOWN_BLOCKS_TEXT:
        bad(where, f"markdown blocks are limited to {MAX_MARKDOWN_BLOCKS_TEXT} characters in total")
    return problems


def _check_element(
    element: Any, at: str, bad: Callable[[str, str], None], text_object: Callable[..., None]
) -> None:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        bad(f"{at}/type", "unknown or missing element type")
        return
    action_id = element.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > MAX_ID_LENGTH):
        bad(f"{at}/action_id", f"must be a string of at most {MAX_ID_LENGTH} characters")
    if element["type"] == "button":
        text_object(element.get("text"), f"{at}/text", MAX_BUTTON_TEXT, plain_only=True)
        value = element.get("value")
        if value is not None and (not isinstance(value, str) or len(value) > MAX_VALUE):
            bad(f"{at}/value", f"must be a string of at most {MAX_VALUE} characters")
