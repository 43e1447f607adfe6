"""The Slack side of threadwise: the Bolt app, its listeners, and what Slack shows (``render``)."""
