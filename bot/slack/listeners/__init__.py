"""One module per Slack surface, each with ``register(app, bot)``; thin: parse, claim, ack, hand on.

Events are acknowledged by Bolt itself before a listener runs (``process_before_response=False``);
an event listener only passes the event to the worker's loop, which decides whether it is for the
bot and claims it there (``bot.slack.worker``), so a burst of deliveries is acknowledged at once.
Commands and clicks acknowledge explicitly, after the claim (or the stored click), before any work.
"""

from bot.slack.listeners import assistant, audience, commands, feedback, files, loop, mention, message

SURFACES = (files, audience, mention, message, assistant, commands, feedback, loop)

__all__ = ["SURFACES"]
