"""Moved to bot.localslack.socket_mode (shared with the playground)."""

import sys

from bot.localslack import socket_mode as _module

sys.modules[__name__] = _module
