"""Moved to bot.localslack.responses (shared with the playground)."""

import sys

from bot.localslack import responses as _module

sys.modules[__name__] = _module
