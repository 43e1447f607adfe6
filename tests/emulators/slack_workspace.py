"""Moved to bot.localslack.workspace (shared with the playground)."""

import sys

from bot.localslack import workspace as _module

sys.modules[__name__] = _module
