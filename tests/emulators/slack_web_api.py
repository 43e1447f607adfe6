"""Moved to bot.localslack.web_api (shared with the playground)."""

import sys

from bot.localslack import web_api as _module

sys.modules[__name__] = _module
