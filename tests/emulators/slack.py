"""Moved to bot.localslack.emulator (shared with the playground)."""

import sys

from bot.localslack import emulator as _module

sys.modules[__name__] = _module
