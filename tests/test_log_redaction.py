"""No token, key or secret reaches a log line, in text or JSON, wherever it hides.

Shaped secrets (Slack tokens, ``sk-`` keys, URL passwords) are masked by pattern; the configured
secret values, whatever their shape, are masked exactly once registered from the settings.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot import logs
from bot.logs import JsonFormatter, RedactSecrets, bind, redact, register_settings_secrets
from bot.settings import Settings

# Values with no recognisable shape: only registration can catch them.
SIGNING_SECRET = "8f14e45fceea167a5a36dedd4bea2543"
OPENAI_KEY = "proxy-key:Zr9/Q+wq=="  # a gateway's key, not sk-...
MILVUS_TOKEN = "root:Milvus#2024"
AGENTOS_KEY = 'agentos "quoted" \\ key-0123'  # characters JSON escapes
BOT_TOKEN = "xoxb-9999-registered-SECRET"  # registered: masked whole, not even its prefix shows
SECRETS = (BOT_TOKEN, SIGNING_SECRET, OPENAI_KEY, MILVUS_TOKEN, AGENTOS_KEY)
SHAPED = {  # not configured here (another app's token in a message): masked by shape
    "xoxb-1234-5678-abcdefSECRET": "xoxb-…",
    "xapp-1-A1-99-ffSECRET": "xapp-…",
    "xoxp-42-43-userSECRET": "xoxp-…",
    "sk-proj-0123456789abcdefSECRET": "sk-pr…",
}
URL = "postgresql+psycopg://bot:hunter2SECRET@db:5432/tw"


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The settings' secrets registered as a command does at start; forgotten after the test."""
    monkeypatch.setattr(logs, "_secret_values", set())
    monkeypatch.setattr(logs, "_values_pattern", None)
    settings = Settings(
        _env_file=None,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        openai_api_key=OPENAI_KEY,
        milvus_token=MILVUS_TOKEN,
        agentos_key=AGENTOS_KEY,
    )
    register_settings_secrets(settings)
    yield


def logger_to(stream: io.StringIO, formatter: logging.Formatter) -> logging.Logger:
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets())
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"test_redaction.{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger


def log_everywhere(logger: logging.Logger) -> None:
    """Every secret, through every way a line can carry one."""
    everything = " ".join([*SECRETS, *SHAPED, URL])
    logger.info("connecting with %s", everything)  # as an argument
    logger.warning(f"inline {everything}")  # in the message itself
    logger.info("with extras", extra={"detail": everything, "config": {"key": OPENAI_KEY}})
    try:
        raise RuntimeError(f"refused: {everything}")
    except RuntimeError:
        logger.exception("failed")
    logger.error("stack", stack_info=True, extra={"detail": MILVUS_TOKEN})


def assert_clean(output: str) -> None:
    for secret in (*SECRETS, json.dumps(AGENTOS_KEY)[1:-1], "SECRET", "hunter2"):
        assert secret not in output


def test_text_lines_hold_no_secret_in_messages_extras_and_tracebacks():
    out = io.StringIO()
    log_everywhere(
        logger_to(
            out, logging.Formatter("%(levelname)s %(message)s extra=%(detail)s", defaults={"detail": "-"})
        )
    )
    text = out.getvalue()
    assert_clean(text)
    assert "refused:" in text and "Traceback" in text and "RuntimeError" in text  # the traceback is there
    for prefix in SHAPED.values():
        assert prefix in text
    assert "bot:•••@db:5432/tw" in text and text.count("•••") >= 4 * len(SECRETS)


def test_json_lines_hold_no_secret_and_stay_json():
    out = io.StringIO()
    logger = logger_to(out, JsonFormatter())
    bind(event_id="Ev1", note=f"context with {SIGNING_SECRET} and {AGENTOS_KEY}")  # bind() takes anything
    log_everywhere(logger)
    bind(note=None)
    lines = out.getvalue().splitlines()
    assert len(lines) == 5
    entries = [json.loads(line) for line in lines]  # masking never breaks a line's JSON
    assert_clean(out.getvalue())
    assert all(e["event_id"] == "Ev1" for e in entries)
    assert "•••" in entries[0]["note"]
    assert "Traceback" in entries[3]["exception"] and "•••" in entries[3]["exception"]


def test_redact_masks_exact_values_and_leaves_other_text_alone():
    assert redact(f"key={OPENAI_KEY}; again {OPENAI_KEY}.") == "key=•••; again •••."
    assert redact("nothing secret: token expired after 20 minutes") == (
        "nothing secret: token expired after 20 minutes"
    )
    # Too short to be a secret, too common to mask: never registered.
    logs.register_secrets("abc", None, "")
    assert redact("abc") == "abc"
