"""One module per Slack surface, each with ``register(app, bot)``; thin: parse, record, ack, hand on.

Events are acknowledged by Bolt itself before a listener runs (``process_before_response=False``);
an event listener only hands the event to the receiver (``bot.slack.receive``), which decides whether
it is for the bot and records it in the ledger for the answer workers (``bot.slack.worker``); file
and channel events record a knowledge job (``bot.jobs``) for them instead.
Commands and clicks acknowledge explicitly, after the claim (or the stored click), before any work.
"""

from bot.slack.listeners import assistant, audience, commands, feedback, files, loop, mention, message

SURFACES = (files, audience, mention, message, assistant, commands, feedback, loop)

__all__ = ["SURFACES"]
