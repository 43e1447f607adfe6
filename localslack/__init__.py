"""A local Slack workspace on loopback: the test emulator and the playground share it.

``emulator.SlackEmulator`` serves the Web API, Socket Mode, response URLs and file downloads over a
``workspace.Workspace``, and sends what Slack sends (signed events, slash commands, interactivity).
"""
