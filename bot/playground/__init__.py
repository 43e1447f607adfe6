"""The playground: the real Slack app in a browser, against a local Slack workspace (``server``)."""
