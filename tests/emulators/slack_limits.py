"""Moved to bot.localslack.limits (shared with the playground)."""

import sys

from bot.localslack import limits as _module

sys.modules[__name__] = _module
