"""The team's models as the tests script them: one model id per member, so the scripted server
(tests/emulators/openai.py) tells the leader, the analyst and the writer apart, and the key the bot
sends it. Shared by in-process tests and the environments of bot subprocesses (tests/processes.py).
"""

LEADER, ANALYST, WRITER = "leader-model", "analyst-model", "writer-model"
API_KEY = "sk-threadwise-test-0123456789abcdef"
