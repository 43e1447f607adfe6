"""Moved to bot.localslack.events (shared with the playground)."""

import sys

from bot.localslack import events as _module

sys.modules[__name__] = _module
